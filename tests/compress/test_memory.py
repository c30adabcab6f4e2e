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
