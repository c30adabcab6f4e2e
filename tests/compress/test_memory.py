"""Memory from the config alone equals the bytes of the built compressed model."""

import subprocess
import sys

import pytest
import torch

from search.compress import apply
from search.memory import layer_weight_bytes, memory_report, model_bytes
from search.recipe import CompressionConfig as C
from search.recipe import LayerCompression, parse_recipe
from search.space.graph import graph_from_config
from tests.compress.helpers import tiny_model
from tests.conftest import tiny_config

RECIPES = {
    "16-bit": C.uniform(),
    "8b g32 asym": C.uniform(bits=8, group_size=32),
    "4b g128 sym": C.uniform(bits=4, group_size=128, symmetric=True),
    "3b per-row": C.uniform(bits=3, group_size=None),
    "2b g24 (partial groups)": C.uniform(bits=2, group_size=24),
    "6b 2:4": C.uniform(bits=6, sparsity=0.5, sparsity_pattern="2:4"),
    "16b unstructured 30%": C.uniform(sparsity=0.3),
    "2b unstructured 50% (dense wins)": C.uniform(bits=2, sparsity=0.5),
    "5b channel 25%": C.uniform(bits=5, group_size=16, sparsity=0.25, sparsity_pattern="channel"),
    "rank 0.25 + 4b": C.uniform(rank=0.25, bits=4, group_size=32),
    "rank 8 + 2:4": C.uniform(rank=8, sparsity=0.5, sparsity_pattern="2:4"),
    "width + depth": C.uniform(width=0.5, heads=0.5, keep_blocks=(0, 2), bits=4, group_size=32),
    "mixed per-layer": parse_recipe({
        "layers": {"_default": {"bits": 4, "group_size": 32},
                   "re:mlp|intermediate|output\\.dense|c_fc": {"bits": 8, "sparsity": 0.5, "sparsity_pattern": "2:4"},
                   "re:\\.(q_proj|query|c_attn)$": {"bits": 3, "symmetric": True, "rank": 0.5},
                   "re:\\.(v_proj|value|c_proj)$": {"bits": 16, "sparsity": 0.4, "sparsity_pattern": "channel"}},
        "width": {"mlp": 0.75}, "keep_blocks": [0, 1]}),
}


@pytest.mark.parametrize("family", ["llama", "gpt2", "bert"])
@pytest.mark.parametrize("name", list(RECIPES))
def test_memory_from_config_equals_built_model_bytes(family, name):
    recipe = RECIPES[name]
    report = memory_report(graph_from_config(tiny_config(family)), recipe)
    compressed = apply(tiny_model(family), recipe)
    assert report.total_bytes == model_bytes(compressed)
    assert report.total_bytes == sum(report.layers.values()) + report.other_bytes


def test_uncompressed_is_two_bytes_per_parameter_and_tied_head_counted_once():
    for family in ("llama", "qwen2", "gpt2", "bert"):
        graph = graph_from_config(tiny_config(family))
        assert memory_report(graph, C.uniform()).total_bytes == 2 * graph.total_params
    assert "lm_head" not in memory_report(graph_from_config(tiny_config("gpt2")), C.uniform()).layers


def test_layer_bytes_formulas():
    # 4-bit, g128, asymmetric on 256 -> 512: codes + fp16 scale + uint8 zero per group + bf16 bias
    assert layer_weight_bytes(256, 512, True, LayerCompression(bits=4)) == 256 * 512 // 2 + 512 * 2 * 3 + 512 * 2
    # 3-bit codes cross byte boundaries: ceil(n * 3 / 8)
    assert layer_weight_bytes(10, 3, False, LayerCompression(bits=3, group_size=None, symmetric=True)) == 12 + 3 * 2
    # 16-bit 50% unstructured: bitmask (1 bit / weight) + bf16 kept values
    assert layer_weight_bytes(64, 64, False, LayerCompression(sparsity=0.5)) == 64 * 64 // 8 + 64 * 32 * 2
    # rank 8 on 64 -> 32: two bf16 factors, the bias on the second
    assert layer_weight_bytes(64, 32, True, LayerCompression(rank=8)) == 2 * (8 * 64 + 32 * 8) + 2 * 32


def test_model_bytes_counts_shared_storage_once():
    model = tiny_model("gpt2").to(torch.bfloat16)
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    assert model_bytes(model) == 2 * sum(p.numel() for p in model.parameters())


def test_memory_and_package_import_do_not_import_torch():
    code = "import sys, search.memory, search.compress; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- GGUF formats (llama.cpp's tensor types) --------------------------------------------------
# Row lengths must be multiples of the block (32; 256 for K-quants), so the models are sized for it.
_SIZES = {"llama": ("hidden_size", "intermediate_size", "num_hidden_layers"),
          "qwen2": ("hidden_size", "intermediate_size", "num_hidden_layers"),
          "bert": ("hidden_size", "intermediate_size", "num_hidden_layers"),
          "gpt2": ("n_embd", "n_inner", "n_layer")}


def format_sized(family: str, hidden: int = 64, inter: int = 192, layers: int = 3) -> dict:
    h, i, n = _SIZES[family]
    return {h: hidden, i: inter, n: layers}


FORMAT_RECIPES = {
    "Q4_0, Q8_0 v/c_proj, embedding Q5_1": (format_sized, parse_recipe({
        "layers": {"_default": {"format": "Q4_0"}, "re:(v_proj|value|c_proj)$": {"format": "Q8_0"}},
        "embedding": {"format": "Q5_1"}})),
    "Q4_1 width + depth": (format_sized, parse_recipe({
        "layers": {"_default": {"format": "Q4_1"}}, "width": {"mlp": 0.5, "heads": 0.5}, "keep_blocks": [0, 2]})),
    "formats beside devicefit groups, 4-bit grouped embedding": (format_sized, parse_recipe({
        "layers": {"_default": {"bits": 4, "group_size": 32}, "re:mlp|intermediate|output\\.dense": {"format": "Q5_0"}},
        "embedding": {"bits": 4, "group_size": 32}})),
    "F16 and BF16, embedding F16": (format_sized, parse_recipe({
        "layers": {"_default": {"format": "F16"}, "re:(q_proj|query|c_attn)$": {"format": "BF16"}},
        "embedding": {"format": "F16"}})),
    "K-quants, embedding Q2_K": (lambda f: format_sized(f, 256, 256, 1), parse_recipe({
        "layers": {"_default": {"format": "Q4_K"}, "re:(down_proj|output\\.dense|mlp\\.c_proj)$": {"format": "Q6_K"},
                   "re:(k_proj|key|c_attn)$": {"format": "Q3_K"}, "re:(v_proj|value|attn\\.c_proj)$": {"format": "Q5_K"}},
        "embedding": {"format": "Q2_K"}})),
}


@pytest.mark.parametrize("family", ["llama", "qwen2", "gpt2", "bert"])
@pytest.mark.parametrize("name", list(FORMAT_RECIPES))
def test_memory_of_format_recipes_equals_built_model_bytes(family, name):
    sized, recipe = FORMAT_RECIPES[name]
    overrides = sized(family)
    report = memory_report(graph_from_config(tiny_config(family, **overrides)), recipe)
    compressed = apply(tiny_model(family, **overrides), recipe)
    assert report.total_bytes == model_bytes(compressed)


def test_format_bytes_formulas():
    # Q4_K on 256 -> 8 with bias: one 144-byte super-block per row + bf16 bias
    assert layer_weight_bytes(256, 8, True, LayerCompression(format="Q4_K")) == 8 * 144 + 8 * 2
    assert layer_weight_bytes(64, 3, False, LayerCompression(format="Q8_0")) == 3 * 2 * 34
    assert layer_weight_bytes(64, 3, False, LayerCompression(format="F16")) == 3 * 64 * 2
    graph = graph_from_config(tiny_config("qwen2"))  # tied: the head is the embedding, counted once
    plain = memory_report(graph, C.uniform()).total_bytes
    q8 = memory_report(graph, parse_recipe({"embedding": {"format": "Q8_0"}})).total_bytes
    assert plain - q8 == 384 * 64 * 2 - 384 * 2 * 34


@pytest.mark.parametrize(("recipe", "message"), [
    ({"layers": {"_default": {"format": "Q4_0"}}}, r"'model.layers.0.mlp.down_proj'.*176 input features.*multiple of 32"),
    ({"layers": {"_default": {"format": "Q8_0", "rank": 8}}}, "drop sparsity and rank"),
    ({"layers": {"_default": {"format": "Q8_0", "sparsity": 0.5, "sparsity_pattern": "2:4"}}}, "drop sparsity"),
    ({"embedding": {"format": "Q4_K"}}, "token embedding.*multiple of 256"),
    ({"embedding": {"sparsity": 0.5}}, "not pruned"),
])
def test_recipes_a_format_cannot_store_are_refused_before_building(recipe, message):
    from search.errors import RecipeError

    with pytest.raises(RecipeError, match=message):
        memory_report(graph_from_config(tiny_config("llama")), parse_recipe(recipe))
    with pytest.raises(RecipeError, match=message):
        apply(tiny_model("llama"), parse_recipe(recipe))
