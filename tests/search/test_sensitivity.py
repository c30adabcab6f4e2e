from search.executors.local import LocalExecutor
from search.models import load_graph
from search.space.sensitivity import cache_path, layer_sensitivity
from search.space.suggest import RecipeSpace
from tests.search.analytic import analytic_evaluate


def test_sensitivity_is_measured_once_and_cached(tiny_spec):
    spec = tiny_spec()
    space = RecipeSpace(load_graph(spec.model), spec.space)
    calls = []

    def counting(task):
        calls.append(task)
        return analytic_evaluate(task)

    first = layer_sensitivity(spec, space, LocalExecutor(evaluate_fn=counting), ("kl", "min"))
    assert set(first) == {g.label for g in space.groups}
    assert len(calls) == len(space.groups) + 1 and all(t.stage == "proxy" for t in calls)
    assert all(v > 0 for v in first.values())  # compressing any group alone costs quality
    assert cache_path(spec, space).is_file()
    again = layer_sensitivity(spec, space, LocalExecutor(evaluate_fn=counting), ("kl", "min"))
    assert again == first and len(calls) == len(space.groups) + 1
