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
