"""GPTQ (search.compress.gptq) in every storage format: it lowers the layer's output error below
round-to-nearest, its codes are exactly the target format (devicefit groups in PackedLinear, GGUF blocks
that llama.cpp dequantizes to the weights torch computes with), and it needs calibration data."""

import gguf
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gguf.quants import dequantize

from search.compress import apply
from search.compress.gguf_linear import GgufLinear
from search.compress.gptq_formats import gptq_blocks, gptq_quantized
from search.compress.layer import WorkLayer
from search.compress.modules import PackedLinear
from search.compress.quantize import dequantize_groups, quantize_groups
from search.compress.transforms.quantize_layer import store, store_in_format
from search.compress.transforms.sparsity import sparsify
from search.data_policy import DataPolicy
from search.errors import RecipeError
from search.evaluation import calibration_rows, compress, needs_calibration
from search.formats.activation_rounding import rounding_for
from search.formats.codec import dequantize_rows, quantize_rows
from search.recipe import CompressionConfig, LayerCompression, parse_recipe
from tests.compress.helpers import tiny_model, token_batch

GGUF_TYPES = ["Q8_0", "Q5_1", "Q5_0", "Q4_1", "Q4_0", "Q6_K", "Q5_K", "Q4_K", "Q3_K", "Q2_K"]


def correlated_layer(rows: int = 48, cols: int = 256, tokens: int = 1024, seed: int = 0):
    """A weight and inputs whose channels are correlated and of unequal energy (as in a transformer)."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.eye(cols) + 1.5 * torch.randn(cols, cols, generator=g) / cols**0.5
    x = (torch.randn(tokens, cols, generator=g) @ mix) * (0.2 + 2 * torch.rand(cols, generator=g))
    w = torch.randn(rows, cols, generator=g) * 0.05
    return w, x


def output_error(x: torch.Tensor, w: torch.Tensor, w_hat: torch.Tensor) -> float:
    return float(torch.linalg.norm(x @ (w - w_hat).T))


def work_layer(w: torch.Tensor, x: torch.Tensor, bias: bool = True) -> WorkLayer:
    b = torch.linspace(-1, 1, w.shape[0]) if bias else None
    return WorkLayer(weight=w.clone(), bias=b, in_hessian=x.T @ x, in_tokens=x.shape[0])


# ---- the layer's output error ----------------------------------------------------------------------

@pytest.mark.parametrize("bits", [4, 3])
@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_output_error_is_below_round_to_nearest_devicefit(bits, act_order):
    w, x = correlated_layer()
    rtn = quantize_groups(w, bits, 64, False)
    q = gptq_quantized(w, x.T @ x, bits, 64, False, act_order=act_order)
    w_rtn = dequantize_groups(rtn.codes, rtn.scales, rtn.zeros, bits, 64)
    w_gptq = dequantize_groups(q.codes, q.scales, q.zeros, bits, 64)
    assert output_error(x, w, w_gptq) < 0.85 * output_error(x, w, w_rtn)


@pytest.mark.parametrize("name", ["Q4_0", "Q4_K", "Q3_K", "Q8_0"])
@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_output_error_is_below_the_types_own_encoder(name, act_order):
    w, x = correlated_layer()
    w_rtn = torch.from_numpy(dequantize_rows(quantize_rows(w.numpy(), name), name))
    w_gptq = torch.from_numpy(dequantize_rows(gptq_blocks(w, x.T @ x, name, act_order=act_order), name))
    assert output_error(x, w, w_gptq) < 0.85 * output_error(x, w, w_rtn)


# ---- exactly the target format -----------------------------------------------------------------------

@pytest.mark.parametrize("name", GGUF_TYPES)
def test_gguf_layer_holds_valid_blocks_that_llama_cpp_reads_as_torch_computes(name):
    w, x = correlated_layer(rows=16, cols=512, tokens=768)
    module = store_in_format(work_layer(w, x), LayerCompression(format=name, method="gptq"))
    assert isinstance(module, GgufLinear) and module.ggml_type == name
    blocks = module.blocks.numpy()
    assert not np.array_equal(blocks, quantize_rows(w.numpy(), name))  # GPTQ chose its own codes
    theirs = dequantize(blocks, gguf.GGMLQuantizationType[name]).reshape(w.shape)
    assert np.array_equal(theirs.view(np.uint32), module.weight.numpy().view(np.uint32))
    xs = x[:4]  # the forward multiplies llama.cpp's rounding of the activations by exactly those weights
    expected = F.linear(rounding_for(name)(xs), torch.from_numpy(theirs), module.bias.float())
    assert torch.equal(module.float()(xs), expected)


@pytest.mark.parametrize("symmetric", [False, True])
def test_devicefit_codes_pack_into_packed_linear_and_its_output_is_their_matmul(symmetric):
    w, x = correlated_layer(rows=24, cols=200)  # a partial last group
    setting = LayerCompression(bits=3, group_size=64, symmetric=symmetric, method="gptq")
    module = store(work_layer(w, x), setting)
    assert isinstance(module, PackedLinear)
    q = gptq_quantized(w, x.T @ x, 3, 64, symmetric)
    expected_w = dequantize_groups(q.codes, q.scales, q.zeros, 3, 64)
    assert torch.equal(module.dense_weight(torch.float32), expected_w)
    rtn = quantize_groups(w, 3, 64, symmetric)
    assert not torch.equal(q.codes, rtn.codes)
    assert q.codes.min() >= 0 and q.codes.max() <= 7
    xs = x[:5]
    assert torch.allclose(module.float()(xs), F.linear(xs, expected_w, module.bias.float()), atol=0, rtol=0)


def test_sparsity_mask_stays_exact_and_gptq_compensates_in_the_kept_weights():
    w, x = correlated_layer(rows=32, cols=256)
    setting = LayerCompression(bits=4, group_size=128, sparsity=0.5, method="gptq")
    layer = sparsify(work_layer(w, x), setting)
    keep = layer.keep
    dense = store(layer, setting).dense_weight(torch.float32)
    assert torch.all(dense[~keep] == 0)
    rtn = quantize_groups(w * keep, 4, 128, False)
    w_rtn = dequantize_groups(rtn.codes, rtn.scales, rtn.zeros, 4, 128)
    # against the dense original: GPTQ moves the pruned weights' error onto the kept ones
    assert output_error(x, w, dense) < output_error(x, w, w_rtn)


# ---- through apply() -----------------------------------------------------------------------------

def test_gptq_without_calibration_data_is_a_recipe_error():
    model = tiny_model("llama")
    with pytest.raises(RecipeError, match="calibration data"):
        apply(model, CompressionConfig.uniform(bits=4, group_size=32, method="gptq"))


def test_apply_with_calibration_uses_the_hessians_of_every_layer_and_factor():
    model = tiny_model("llama")
    recipe = parse_recipe({"layers": {"_default": {"bits": 4, "group_size": 32, "method": "gptq"},
                                      "re:up_proj": {"bits": 4, "group_size": 32, "rank": 16, "method": "gptq",
                                                     "act_order": True}}})
    calibration = token_batch(n=4, seq=32)
    built = apply(model, recipe, calibration=calibration)
    rtn = apply(model, parse_recipe({"layers": {"_default": {"bits": 4, "group_size": 32}}}))
    down = built.model.layers[0].mlp.down_proj
    assert isinstance(down, PackedLinear)
    assert not torch.equal(down.qweight, rtn.model.layers[0].mlp.down_proj.qweight)
    assert type(built.model.layers[0].mlp.up_proj).__name__ == "LowRankLinear"


def test_recipe_fields_round_trip_and_show_in_the_summary():
    recipe = CompressionConfig.uniform(bits=3, method="gptq", act_order=True)
    assert parse_recipe(recipe.to_json()) == recipe
    assert recipe.summary() == "3b/g128 gptq-ao"
    assert needs_calibration(recipe) and not needs_calibration(CompressionConfig.uniform(bits=3))
    assert not needs_calibration(CompressionConfig.uniform(bits=16, method="gptq"))  # nothing to round
    with pytest.raises(RecipeError, match="act_order only applies"):
        parse_recipe({"layers": {"_default": {"bits": 4, "act_order": True}}})
    with pytest.raises(RecipeError, match="embedding"):
        parse_recipe({"embedding": {"bits": 4, "method": "gptq"}})


def test_rebuilding_with_the_same_calibration_rows_gives_the_same_model(tiny_llama):
    calibration = calibration_rows(tiny_llama, DataPolicy(calib_rows=2, eval_rows=2, seq_len=32))
    recipe = CompressionConfig.uniform(bits=4, group_size=32, method="gptq", act_order=True)
    a, b = (apply(tiny_llama.model, recipe, calibration=calibration) for _ in range(2))  # no variant cache
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


# ---- what is scored is what is shipped -----------------------------------------------------------

def test_gguf_export_of_a_gptq_candidate_holds_the_scored_weights(tiny_llama, tmp_path):
    from search.export_candidate import export_candidate
    from search.runtimes.gguf_names import pair_rotary_rows

    policy = DataPolicy(calib_rows=3, eval_rows=2, seq_len=32)
    recipe = parse_recipe({"layers": {  # down_proj has 176 inputs: no whole blocks
        "_default": {"format": "Q4_0", "method": "gptq"}, "re:down_proj": {"format": "F16"},
        "re:v_proj": {"format": "Q4_1", "method": "gptq", "act_order": True}}})
    scored = compress(tiny_llama, recipe, policy)
    path = export_candidate(tiny_llama.ref, recipe, tmp_path / "out", policy=policy, format="gguf",
                            loaded=tiny_llama)
    tensors = {t.name: t for t in gguf.GGUFReader(str(path)).tensors}
    layer = scored.model.layers[1]
    shipped = {"blk.1.ffn_up.weight": layer.mlp.up_proj, "blk.1.attn_v.weight": layer.self_attn.v_proj,
               "blk.1.attn_q.weight": layer.self_attn.q_proj}
    heads = tiny_llama.model.config.num_attention_heads
    for name, module in shipped.items():
        assert isinstance(module, GgufLinear)
        t = tensors[name]
        assert t.tensor_type.name == module.ggml_type
        expected = module.blocks.numpy()
        if name.endswith("attn_q.weight"):  # llama.cpp's rotation order moves whole rows
            expected = pair_rotary_rows(expected, heads)
        assert np.array_equal(np.asarray(t.data).reshape(expected.shape), expected)
    assert not np.array_equal(layer.mlp.up_proj.blocks.numpy(),
                              quantize_rows(tiny_llama.model.model.layers[1].mlp.up_proj.weight.detach().numpy(),
                                            "Q4_0"))  # the export is GPTQ's, not a re-encoding


# ---- on the demo models (slow: real models, calibration and scoring) -----------------------------------

DEMO_CASES = [("demo:minilm", {"bits": 4, "group_size": 128}), ("demo:minilm", {"bits": 3, "group_size": 128}),
              ("demo:minilm", {"format": "Q4_0"}),  # 384-wide layers: no K-quant applies
              ("demo:tinylm", {"bits": 4, "group_size": 128}), ("demo:tinylm", {"bits": 3, "group_size": 128}),
              ("demo:tinylm", {"format": "Q4_K"}), ("demo:tinylm", {"format": "Q3_K"}),
              ("demo:tinylm", {"format": "Q4_0"})]


@pytest.fixture(scope="module")
def demo_models():
    from search.models import load_model

    cache = {}
    return lambda ref: cache.setdefault(ref, load_model(ref))


@pytest.mark.slow
@pytest.mark.parametrize(("ref", "setting"), DEMO_CASES, ids=lambda v: v if isinstance(v, str) else
                         v.get("format") or f"{v['bits']}b")
def test_gptq_beats_round_to_nearest_on_the_demo_models(demo_models, ref, setting):
    from search.evaluation import score

    loaded, policy = demo_models(ref), DataPolicy(eval_rows=8)
    quality = {}
    for method in ("rtn", "gptq"):
        recipe = parse_recipe({"layers": {"_default": {**setting, "method": method}}})
        quality[method] = score(loaded, compress(loaded, recipe, policy), policy, recipe=recipe)
    if "cosine" in quality["rtn"]:
        assert quality["gptq"]["cosine"] > quality["rtn"]["cosine"], quality
    else:
        assert quality["gptq"]["kl"] < quality["rtn"]["kl"], quality
