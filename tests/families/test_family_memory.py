"""Memory from the config alone equals the bytes of the built compressed model, for the newer families."""

import pytest

from search.compress import apply
from search.memory import memory_report, model_bytes
from search.recipe import CompressionConfig as C
from search.recipe import parse_recipe
from search.space.graph import graph_from_config
from tests.compress.test_memory import RECIPES as OLDER_FAMILY_RECIPES
from tests.families.configs import NEW_FAMILIES, family_config, family_model

# the older families' mixed recipe names BERT/GPT-2 modules; this one matches every Llama-like layout
MIXED = parse_recipe({
    "layers": {"_default": {"bits": 4, "group_size": 32},
               "re:mlp": {"bits": 8, "sparsity": 0.5, "sparsity_pattern": "2:4"},
               "re:self_attn\\.(q_proj|qkv_proj)$": {"bits": 3, "symmetric": True, "rank": 0.5},
               "re:self_attn\\.(v_proj|o_proj)$": {"bits": 16, "sparsity": 0.4, "sparsity_pattern": "channel"}},
    "width": {"mlp": 0.75, "heads": 0.5}, "keep_blocks": [0, 2]})
RECIPES = {**{k: v for k, v in OLDER_FAMILY_RECIPES.items() if k != "mixed per-layer"}, "mixed per-layer": MIXED,
           "heads only, GQA": C.uniform(heads=0.5, bits=5, group_size=16),
           "8-bit embeddings (a tied head follows)": parse_recipe(
               {"layers": {"_default": {"bits": 4, "group_size": 32}}, "embedding": {"bits": 8, "group_size": 32}})}


@pytest.mark.parametrize("model_type", NEW_FAMILIES)
@pytest.mark.parametrize("name", list(RECIPES))
def test_memory_from_config_equals_built_model_bytes(model_type, name):
    recipe = RECIPES[name]
    report = memory_report(graph_from_config(family_config(model_type)), recipe)
    assert report.total_bytes == model_bytes(apply(family_model(model_type), recipe))
    assert report.total_bytes == sum(report.layers.values()) + report.other_bytes


@pytest.mark.parametrize("model_type", NEW_FAMILIES)
def test_uncompressed_is_two_bytes_per_parameter(model_type):
    graph = graph_from_config(family_config(model_type))
    assert memory_report(graph, C.uniform()).total_bytes == 2 * graph.total_params
    assert ("lm_head" in memory_report(graph, C.uniform()).layers) == (not graph.layer("lm_head").tied)
