import json

import pytest

from search.errors import RecipeError
from search.recipe import CompressionConfig, LayerCompression, evenly_spaced_blocks, parse_recipe
from search.space.graph import graph_from_config
from tests.conftest import tiny_config


@pytest.fixture
def graph():
    return graph_from_config(tiny_config("llama"))


def test_json_round_trip_keeps_every_field():
    recipe = parse_recipe({
        "layers": {"_default": {"bits": 4, "group_size": 32, "symmetric": True},
                   "re:.*mlp.*": {"bits": 8, "sparsity": 0.5, "sparsity_pattern": "2:4"},
                   "model.layers.0.self_attn.q_proj": {"rank": 0.25}},
        "width": {"mlp": 0.5, "heads": 0.5}, "keep_blocks": [3, 0, 1]})
    again = parse_recipe(recipe.to_json())
    assert again == recipe
    assert again.keep_blocks == (0, 1, 3)
    assert json.loads(again.to_json())["layers"]["re:.*mlp.*"]["sparsity_pattern"] == "2:4"


def test_resolution_order_exact_then_pattern_then_default(graph):
    recipe = parse_recipe({"layers": {"_default": {"bits": 4},
                                      "re:mlp": {"bits": 8},
                                      "model.layers.1.mlp.up_proj": {"bits": 3}}})
    resolved = recipe.resolve(graph)
    assert resolved["model.layers.1.mlp.up_proj"].bits == 3
    assert resolved["model.layers.0.mlp.up_proj"].bits == 8
    assert resolved["model.layers.0.self_attn.q_proj"].bits == 4


@pytest.mark.parametrize("bad, needle", [
    ({"layers": {"_default": {"bits": 7}}}, "16, 8, 6, 5, 4, 3, 2"),
    ({"layers": {"_default": {"sparsity": 1.0}}}, "[0, 1)"),
    ({"layers": {"_default": {"sparsity": 0.3, "sparsity_pattern": "2:4"}}}, "0.5"),
    ({"layers": {"_default": {"rank": 0}}}, "at least 1"),
    ({"layers": {"re:(": {"bits": 4}}}, "not a valid regular expression"),
    ({"width": {"mlp": 0}}, "(0, 1]"),
    ({"layers": {"_default": {"bitz": 4}}}, "bitz"),
])
def test_invalid_recipes_name_the_problem(bad, needle):
    with pytest.raises(RecipeError) as exc:
        parse_recipe(bad)
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)


def test_unknown_layer_and_unmatched_pattern_are_named(graph):
    with pytest.raises(RecipeError, match="model.layers.9.mlp.up_proj"):
        parse_recipe({"layers": {"model.layers.9.mlp.up_proj": {"bits": 4}}}).resolve(graph)
    with pytest.raises(RecipeError, match="re:nothing_like_this"):
        parse_recipe({"layers": {"re:nothing_like_this": {"bits": 4}}}).resolve(graph)


def test_rank_above_full_rank_is_refused(graph):
    with pytest.raises(RecipeError, match="rank 33 for layer 'model.layers.0.self_attn.k_proj' exceeds its full rank 32"):
        CompressionConfig.uniform(rank=33).resolve(graph)
    assert CompressionConfig.uniform(rank=32).resolve(graph)


def test_block_past_the_end_is_refused(graph):
    with pytest.raises(RecipeError, match="blocks 0..3"):
        CompressionConfig.uniform(keep_blocks=(0, 4)).resolve(graph)


def test_tied_lm_head_is_left_uncompressed_by_default_and_refused_by_name():
    graph = graph_from_config(tiny_config("qwen2"))
    assert CompressionConfig.uniform(bits=4).resolve(graph)["lm_head"].bits == 16
    with pytest.raises(RecipeError, match="shares its weight"):
        parse_recipe({"layers": {"lm_head": {"bits": 4}}}).resolve(graph)


def test_rank_fraction_and_depth_shortcut():
    assert LayerCompression(rank=0.25).rank_for(64, 176) == 16
    assert LayerCompression(rank=8).rank_for(64, 176) == 8
    assert evenly_spaced_blocks(6, 0.5) == (0, 2, 5)
    assert evenly_spaced_blocks(4, 1.0) == (0, 1, 2, 3)


def test_summary_is_compact():
    text = CompressionConfig.uniform(bits=4, sparsity=0.5, sparsity_pattern="2:4", width=0.5,
                                     keep_blocks=(0, 1)).summary()
    assert "4b/g128" in text and "2:4" in text and "mlp×0.5" in text and "2 blocks" in text
