"""The search proposes for a device only what its runtime runs (runtime capabilities of the profiles)."""

import optuna
import pytest

from search.hw_profiles.profile import list_profiles, load_profile
from search.hw_profiles.runtimes import runtime_caps, unrunnable
from search.recipe import CompressionConfig, LayerCompression
from search.space.graph import graph_from_config
from search.space.suggest import RecipeSpace
from search.spec import SearchSpace
from tests.conftest import tiny_config


def test_every_shipped_profile_names_a_known_runtime():
    names = {p: runtime_caps(load_profile(p)).name for p in list_profiles()}
    assert names["rpi5"] == "llama.cpp" and names["host"] == "pytorch"
    assert names["jetson-orin-nano"] == "mlc"
    assert runtime_caps(load_profile("rpi5")).export_format == "gguf"


@pytest.mark.parametrize("device", ["rpi5", "jetson-orin-nano", "host"])
@pytest.mark.parametrize("family,overrides", [
    ("llama", dict(hidden_size=256, intermediate_size=768, num_attention_heads=8, num_key_value_heads=4)),
    ("bert", dict(hidden_size=96, intermediate_size=384, num_attention_heads=3)),  # rows of 96: no K-quants
])
def test_sampled_recipes_are_runnable_on_the_device(device, family, overrides):
    graph = graph_from_config(tiny_config(family, **overrides))
    caps = runtime_caps(load_profile(device))
    space = RecipeSpace(graph, SearchSpace(granularity="role"), caps)
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    seen_formats = set()
    for _ in range(40):
        trial = study.ask(space.distributions())
        recipe = space.recipe(trial.params)
        assert unrunnable(graph, recipe, caps) == [], recipe.summary()
        seen_formats |= {s.format for s in recipe.resolve(graph).values()}
        study.tell(trial, 0.0)
    if caps.gguf:  # the search really explores the runtime's types, not one fixed choice
        assert len(seen_formats) >= 3
        assert None not in seen_formats


FITTING_LLAMA = dict(hidden_size=256, intermediate_size=768, num_attention_heads=8, num_key_value_heads=4)


def test_gguf_space_offers_each_runtime_type_as_its_own_choice():
    """Q4_0 and Q4_K (and Q4_1) are different trade-offs at 4 bits: all are choices, and proposed."""
    graph = graph_from_config(tiny_config("llama", **FITTING_LLAMA))  # every row a multiple of 256
    caps = runtime_caps(load_profile("rpi5"))
    space = RecipeSpace(graph, SearchSpace(granularity="model"), caps)
    assert {"Q4_0", "Q4_K", "Q4_1", "Q5_0", "Q5_K", "Q3_K", "Q2_K", "Q8_0", "Q6_K"} <= set(space.choices["all.format"])
    assert space.choices["embedding.format"] == space.choices["all.format"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    proposed = set()
    for _ in range(120):  # 11 types: each is missed by 120 random draws with probability < 1e-4
        trial = study.ask(space.distributions())
        proposed.add(space.recipe(trial.params).layers["_default"].format)
        study.tell(trial, 0.0)
    assert {"Q4_0", "Q4_K"} <= proposed


def test_a_chosen_type_falls_back_per_tensor_as_llama_cpp_does():
    graph = graph_from_config(tiny_config("bert", hidden_size=96, intermediate_size=512, num_attention_heads=3))
    caps = runtime_caps(load_profile("rpi5"))
    space = RecipeSpace(graph, SearchSpace(granularity="model", axes=("bits",)), caps)
    for chosen, expected_q, expected_fc2 in [("Q4_K", "Q5_0", "Q4_K"), ("Q6_K", "Q8_0", "Q6_K"),
                                             ("Q5_K", "Q5_1", "Q5_K"), ("Q3_K", "Q4_0", "Q3_K"),
                                             ("Q4_0", "Q4_0", "Q4_0")]:
        layers = space.recipe(space.params(format=chosen)).resolve(graph)
        by_role = {layer.role: layers[layer.name].format for layer in graph.layers if layer.name in layers}
        assert (by_role["q"], by_role["fc2"]) == (expected_q, expected_fc2), chosen  # rows of 96 vs 512


def test_gguf_types_fit_the_rows_or_fall_back_to_more_bits():
    graph = graph_from_config(tiny_config("bert", hidden_size=96, intermediate_size=512, num_attention_heads=3))
    caps = runtime_caps(load_profile("rpi5"))
    space = RecipeSpace(graph, SearchSpace(granularity="role", axes=("bits",)), caps)
    params = space.params(bits=4)
    layers = space.recipe(params).resolve(graph)
    by_role = {layer.role: layers[layer.name].format for layer in graph.layers if layer.name in layers}
    assert by_role["fc2"] == "Q4_K"  # 512 inputs: two 256-blocks
    assert by_role["q"] == "Q4_0"  # 96 inputs: 32-blocks only
    three = space.recipe(space.params(bits=3)).resolve(graph)
    assert {three[layer.name].format for layer in graph.layers if layer.role == "q"} == {"Q4_0"}  # not fewer bits


def test_unrunnable_names_what_the_runtime_lacks():
    graph = graph_from_config(tiny_config("llama"))
    caps = runtime_caps(load_profile("rpi5"))
    problems = unrunnable(graph, CompressionConfig.uniform(bits=4, sparsity=0.5, sparsity_pattern="2:4"), caps)
    assert any("2:4 sparsity" in p for p in problems) and any("GGUF types" in p for p in problems)
    ok = CompressionConfig(layers={"_default": LayerCompression(format="Q8_0")})
    assert unrunnable(graph, ok, caps) == []
    assert unrunnable(graph, CompressionConfig.uniform(rank=0.5), caps)


# ---- seeds: the runtime's baselines -------------------------------------------------------------

def _seed_recipes(device, space_fields=None):
    from search.seeds import seed_params

    graph = graph_from_config(tiny_config("llama", **FITTING_LLAMA))
    space = RecipeSpace(graph, SearchSpace(**(space_fields or {})), runtime_caps(load_profile(device)))
    seeds = seed_params(space)
    return graph, {label: space.recipe(params) for label, params in seeds}, seeds


def _same(graph, a, b):
    return a.resolve(graph) == b.resolve(graph) and a.embedding == b.embedding and a.width == b.width \
        and a.keep_blocks == b.keep_blocks


def _assert_seeded(graph, recipes, baseline):
    assert any(_same(graph, recipe, baseline) for recipe in recipes.values()), baseline.summary()


def test_seeds_hold_every_llama_cpp_type_uniformly():
    graph, recipes, seeds = _seed_recipes("rpi5")
    for name in ("Q8_0", "Q6_K", "Q5_K", "Q5_0", "Q5_1", "Q4_K", "Q4_0", "Q4_1", "Q3_K", "Q2_K"):
        setting = LayerCompression(format=name)  # llama-quantize --pure: every 2-D weight, embeddings too
        _assert_seeded(graph, recipes, CompressionConfig(layers={"_default": setting}, embedding=setting))
    assert len(seeds) < 30


def test_seeds_hold_mlc_group_quantization():
    graph, recipes, seeds = _seed_recipes("jetson-orin-nano")
    for bits in (4, 3):  # q4f16_1: 4-bit codes, groups of 32, fp16 scale, no zero point; q3f16 likewise
        _assert_seeded(graph, recipes, CompressionConfig.uniform(bits=bits, group_size=32, symmetric=True))
    assert len(seeds) < 30


def test_seeds_hold_every_bits_and_group_size_on_pytorch():
    graph, recipes, seeds = _seed_recipes("host")
    for bits in (8, 6, 5, 4, 3, 2):
        for group in (32, 128):
            _assert_seeded(graph, recipes, CompressionConfig.uniform(bits=bits, group_size=group))
    assert len(seeds) < 30
    assert len({r.to_json() for r in recipes.values()}) == len(seeds)  # no recipe seeded twice


def test_gptq_is_a_choice_and_seeded_at_four_and_three_bits():
    with_gptq = {"methods": ["rtn", "gptq"]}
    graph, recipes, _ = _seed_recipes("host", with_gptq)
    for bits in (4, 3):
        _assert_seeded(graph, recipes, CompressionConfig.uniform(bits=bits, group_size=128, method="gptq"))
    graph, recipes, _ = _seed_recipes("rpi5", with_gptq)
    for name in ("Q4_K", "Q3_K"):
        setting = LayerCompression(format=name, method="gptq")
        _assert_seeded(graph, recipes, CompressionConfig(layers={"_default": setting},
                                                         embedding=LayerCompression(format=name)))
    graph, recipes, _ = _seed_recipes("host", {"methods": ["rtn"]})  # round-to-nearest only
    assert not any(s.method == "gptq" for r in recipes.values() for s in r.layers.values())


def test_wanda_is_a_score_choice_and_two_four_only_where_the_runtime_runs_it():
    graph = graph_from_config(tiny_config("llama", **FITTING_LLAMA))
    space = {d: RecipeSpace(graph, SearchSpace(granularity="model"), runtime_caps(load_profile(d)))
             for d in ("rpi5", "jetson-orin-nano", "host")}
    assert space["host"].choices["all.score"] == ["magnitude", "wanda"]
    assert "0.5@2:4" in space["host"].choices["all.sparsity"]
    assert space["jetson-orin-nano"].choices["all.sparsity"] == ["0", "0.5@2:4"]  # MLC: 2:4 only
    assert "all.sparsity" not in space["rpi5"].choices and "all.score" not in space["rpi5"].choices
    host = space["host"]
    params = host.params(bits=4, sparsity="0.5", score="wanda")
    assert host.recipe(params).layers["_default"].sparsity_score == "wanda"
