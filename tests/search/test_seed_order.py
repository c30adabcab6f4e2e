"""Seeds span the cost range first: the first evaluations reach both ends of latency and memory."""

from search.hw_profiles.runtimes import runtime_caps
from search.models import load_graph
from search.seeds import seed_params, spread_order
from search.space.suggest import RecipeSpace
from search.spec import SearchSpec
from search.staging import CheapEvaluator


def test_spread_order_places_the_extremes_before_the_near_duplicates():
    seeds = [(name, {"x": x}) for name, x in (("start", 0), ("near start", 1), ("middle", 50), ("far", 100),
                                              ("near far", 99))]
    order = [name for name, _ in spread_order(seeds, lambda p: (p["x"], 0.0))]
    assert order[:3] == ["start", "far", "middle"] and set(order[3:]) == {"near start", "near far"}


def test_minilm_rpi5_seeds_reach_the_fast_end_and_the_best_quality_within_the_first_five():
    spec = SearchSpec(model="demo:minilm", device="rpi5", workload="encode:128", storage="memory://")
    graph = load_graph(spec.model)
    cheap = CheapEvaluator(spec, graph)
    space = RecipeSpace(graph, spec.space, runtime_caps(cheap.profile))

    def cost(params):
        c = cheap(space.recipe(params))
        return c.latency_ms, c.memory_bytes

    ordered = seed_params(space, cost)
    assert sorted(label for label, _ in ordered) == sorted(label for label, _ in seed_params(space))
    latencies = [cost(p)[0] for _, p in ordered]
    first = [label for label, _ in ordered[:5]]
    assert min(latencies[:5]) == min(latencies)  # the smallest model of the space
    assert "uniform Q8_0" in first  # the most faithful feasible baseline
    structural = [space.recipe(p) for label, p in ordered if "mlp" in label or "depth" in label or "heads" in label]
    assert structural and all(r.resolve(graph)[graph.layers[0].name].method == "gptq" for r in structural)
