"""Quantization: every weight reconstructs within half its group's step, with real packed storage.

Tolerance: the scale is stored in float16 and rounded *up* to the next float16
before the codes are computed with it, so the covered range never shrinks and no
code is clamped; the only slack left is float32 arithmetic in r / s (relative
error 2^-24), bounded here by 2^-20 * |r|. So the test checks
|r - r^| <= s/2 + 2^-20 |r| with s the stored float16 scale.
"""

import math

import pytest
import torch

from search.compress import apply
from search.compress.modules import QuantizedLinear
from search.compress.quantize import dequantize_groups, quantize_groups, round_up_fp16
from search.recipe import CompressionConfig
from tests.compress.helpers import tiny_model

BITS = [8, 6, 5, 4, 3, 2]


def _scale_per_weight(scales: torch.Tensor, in_features: int, group_size: int | None) -> torch.Tensor:
    g = in_features if group_size is None else min(group_size, in_features)
    return scales.float().repeat_interleave(g, dim=1)[:, :in_features]


def _within_half_step(w, w_hat, step):
    return bool(((w - w_hat).abs() <= step / 2 + 2**-20 * w.abs()).all())


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("group_size", [None, 16, 24])  # 24 leaves a partial last group of 64 columns
def test_reconstruction_within_half_scale(bits, symmetric, group_size):
    torch.manual_seed(bits)
    w = torch.randn(12, 64) * torch.rand(12, 1) * 3
    w[0, :16] = 0.0  # an all-zero group (when grouped by 16)
    w[1] = w[1].abs() + 0.1  # an all-positive row: the range is extended to include 0
    q = quantize_groups(w, bits, group_size, symmetric)
    assert q.scales.dtype == torch.float16 and (q.zeros is None) == symmetric
    assert int(q.codes.min()) >= 0 and int(q.codes.max()) <= 2**bits - 1
    w_hat = dequantize_groups(q.codes, q.scales, q.zeros, bits, group_size)
    step = _scale_per_weight(q.scales, 64, group_size)
    assert _within_half_step(w, w_hat, step)
    assert torch.equal(w_hat[w == 0], torch.zeros_like(w_hat[w == 0]))  # zeros stay exactly zero


def test_seed_formulas_on_a_small_group():
    w = torch.tensor([[-1.0, 0.0, 0.5, 2.0]])
    q = quantize_groups(w, 2, None, symmetric=False)
    s = 3.0 / 3  # (max - min) / (2^b - 1)
    assert float(q.scales) == s and int(q.zeros) == round(1.0 / s)  # z = round(-min / s)
    assert q.codes.tolist() == [[0, 1, 1, 3]]  # clamp(round(r / s) + z, 0, 3); round(0.5) = 0 (half to even)
    sym = quantize_groups(w, 4, None, symmetric=True)
    assert math.isclose(float(sym.scales), float(round_up_fp16(torch.tensor(2.0 / 7))), rel_tol=0)
    # round(r / s) with s = 2/7 rounded up to float16 (so -1 / s = -3.4998 -> -3), offset by 2^(b-1)
    assert (sym.codes - 8).tolist() == [[-3, 0, 2, 7]]


def test_scale_rounds_up_to_float16():
    s = torch.tensor([0.1, 1 / 3, 1e-3, 5.0])
    half = round_up_fp16(s)
    assert (half.float() >= s).all()
    below = (half.view(torch.int16) - 1).view(torch.float16).float()
    assert (below < s).all()  # the smallest float16 >= s


@pytest.mark.parametrize("bits", BITS)
def test_quantized_model_layers_within_half_scale(bits):
    model = tiny_model("llama")
    originals = {n: m.weight.detach().clone() for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    recipe = CompressionConfig.uniform(bits=bits, group_size=32)
    compressed = apply(model, recipe)
    checked = 0
    for name, module in compressed.named_modules():
        if not isinstance(module, QuantizedLinear):
            continue
        assert module.qweight.dtype == torch.uint8 and module.scales.dtype == torch.float16
        assert module.zeros.dtype == torch.uint8
        assert module.qweight.numel() == math.ceil(module.in_features * module.out_features * bits / 8)
        step = _scale_per_weight(module.scales, module.in_features, 32)
        assert _within_half_step(originals[name], module.dense_weight(torch.float32), step), name
        checked += 1
    assert checked == len(originals)  # every linear layer, lm_head included (untied in this config)


# ---- the "quantize" transform with a GGUF format --------------------------------------------------

def _work_layer(out_f=8, in_f=64, seed=0):
    from search.compress.layer import WorkLayer

    g = torch.Generator().manual_seed(seed)
    return WorkLayer(weight=torch.randn(out_f, in_f, generator=g), bias=torch.randn(out_f, generator=g))


def test_format_setting_stores_the_format():
    from search.compress.gguf_linear import GgufLinear
    from search.compress.registry import transform
    from search.recipe import LayerCompression

    store = transform("quantize")
    q4 = store(_work_layer(), LayerCompression(format="Q4_0"))
    assert isinstance(q4, GgufLinear) and q4.ggml_type == "Q4_0" and q4.blocks.shape == (8, 2 * 18)
    layer = _work_layer()
    f16 = store(layer, LayerCompression(format="F16"))
    assert isinstance(f16, GgufLinear) and torch.equal(f16.weight, layer.weight.half().float())  # fp16, not bf16
    bf16 = store(_work_layer(), LayerCompression(format="BF16"))
    assert type(bf16) is torch.nn.Linear and bf16.weight.dtype == torch.bfloat16


def test_format_refuses_a_sparsity_mask_and_a_partial_block():
    from search.compress.registry import transform
    from search.errors import RecipeError
    from search.recipe import LayerCompression

    layer = _work_layer()
    layer.keep = torch.rand(8, 64) > 0.5
    with pytest.raises(RecipeError, match="sparsity mask"):
        transform("quantize")(layer, LayerCompression(format="Q8_0"))
    with pytest.raises(RecipeError, match="multiple of 256"):
        transform("quantize")(_work_layer(in_f=320), LayerCompression(format="Q6_K"))
