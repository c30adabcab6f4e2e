import pytest
import torch

from search.compress import apply
from search.compress.modules import LowRankLinear, QuantizedLinear
from search.compress.transforms.lowrank import factorize, tail_energy_error
from search.recipe import CompressionConfig as C
from tests.compress.helpers import outputs, tiny_model, token_batch


@pytest.mark.parametrize("rank", [1, 8, 32, 63])
def test_relative_frobenius_error_is_the_tail_energy(rank):
    torch.manual_seed(rank)
    w = torch.randn(96, 64) @ torch.diag(torch.linspace(2, 0.01, 64))  # a decaying spectrum
    a, b = factorize(w, rank)
    assert a.shape == (rank, 64) and b.shape == (96, rank)
    error = float(torch.linalg.norm(w - b @ a) / torch.linalg.norm(w))  # fp32, before any bf16 cast
    assert abs(error - tail_energy_error(w, rank)) <= 1e-4


def test_real_minilm_weight(minilm):
    w = minilm.model.encoder.layer[0].intermediate.dense.weight.detach()
    a, b = factorize(w, 96)
    error = float(torch.linalg.norm(w - b @ a) / torch.linalg.norm(w))
    assert abs(error - tail_energy_error(w, 96)) <= 1e-4


def test_low_rank_layers_in_the_model_then_quantized():
    model = tiny_model("qwen2")
    compressed = apply(model, C.uniform(rank=0.25, bits=4, group_size=16))
    layer = compressed.model.layers[0].mlp.down_proj
    assert isinstance(layer, LowRankLinear) and layer.rank == 16  # round(0.25 * min(176, 64))
    assert isinstance(layer.a, QuantizedLinear) and isinstance(layer.b, QuantizedLinear)
    assert layer.a.bias is None and compressed.model.layers[0].self_attn.q_proj.b.bias is not None
    assert torch.isfinite(outputs(compressed, token_batch())).all()
