import pytest
import torch

from search.compress import apply
from search.compress.layer import WorkLayer
from search.compress.modules import PackedLinear
from search.compress.transforms.sparsity import sparsify
from search.recipe import CompressionConfig as C
from search.recipe import LayerCompression
from tests.compress.helpers import outputs, tiny_model, token_batch


@pytest.mark.parametrize("sparsity", [0.1, 0.3, 0.5, 0.7, 0.9])
@pytest.mark.parametrize("in_features", [64, 50])
def test_unstructured_prunes_exactly_round_s_times_in_per_row(sparsity, in_features):
    layer = WorkLayer(weight=torch.randn(8, in_features), bias=None)
    out = sparsify(layer, LayerCompression(sparsity=sparsity))
    zeros_per_row = (~out.keep).sum(dim=1)
    assert (zeros_per_row == round(sparsity * in_features)).all()
    assert ((out.weight == 0) == ~out.keep).all()


@pytest.mark.parametrize("in_features", [64, 66, 67])
def test_two_four_holds_in_every_group(in_features):
    layer = WorkLayer(weight=torch.randn(16, in_features), bias=None)
    keep = sparsify(layer, LayerCompression(sparsity=0.5, sparsity_pattern="2:4")).keep
    full = in_features // 4 * 4
    assert ((~keep[:, :full]).view(16, -1, 4).sum(dim=-1) == 2).all()
    tail = in_features - full
    assert ((~keep[:, full:]).sum(dim=1) == tail // 2).all()  # a partial group of m loses floor(m/2)


def test_two_four_keeps_the_two_largest():
    w = torch.tensor([[0.1, -3.0, 2.0, 0.2, 5.0, 0.0, -0.1, 4.0]])
    keep = sparsify(WorkLayer(weight=w, bias=None), LayerCompression(sparsity=0.5, sparsity_pattern="2:4")).keep
    assert keep.tolist() == [[False, True, True, False, True, False, False, True]]


def test_wanda_weighs_magnitude_by_input_norm():
    w = torch.ones(4, 8)
    w[:, 0] = 0.5  # smallest weights, but on a loud input channel
    norms = torch.ones(8)
    norms[0] = 100.0
    setting = LayerCompression(sparsity=0.25, sparsity_score="wanda")
    wanda = sparsify(WorkLayer(weight=w.clone(), bias=None, in_sq_norm=norms), setting).keep
    magnitude = sparsify(WorkLayer(weight=w.clone(), bias=None), setting.model_copy(
        update={"sparsity_score": "magnitude"})).keep
    assert wanda[:, 0].all() and not magnitude[:, 0].any()


def test_channel_removes_round_s_times_out_rows():
    w = torch.randn(20, 8)
    w[3] *= 0.01
    out = sparsify(WorkLayer(weight=w, bias=None), LayerCompression(sparsity=0.3, sparsity_pattern="channel"))
    assert int((~out.keep_rows).sum()) == 6 and not out.keep_rows[3]
    assert (out.weight[~out.keep_rows] == 0).all()


@pytest.mark.parametrize("pattern,score", [("unstructured", "magnitude"), ("unstructured", "wanda"),
                                           ("2:4", "wanda"), ("channel", "magnitude"), ("channel", "wanda")])
def test_achieved_sparsity_in_the_built_model(pattern, score):
    model = tiny_model("llama")
    recipe = C.uniform(sparsity=0.5, sparsity_pattern=pattern, sparsity_score=score)
    compressed = apply(model, recipe, calibration=token_batch(4, 16))
    packed = [m for m in compressed.modules() if isinstance(m, PackedLinear)]
    assert len(packed) == 29  # 4 blocks x 7 + lm_head
    for m in packed:
        dense = m.dense_weight(torch.float32)
        if pattern == "channel":
            zero_rows = int((dense == 0).all(dim=1).sum())
            assert zero_rows == round(0.5 * m.out_features) and m.rows == m.out_features - zero_rows
        else:
            zeros = int((dense == 0).sum())
            assert zeros == round(0.5 * m.in_features) * m.out_features  # 2:4 on in % 4 == 0 is the same
    assert torch.isfinite(outputs(compressed, token_batch())).all()


def test_wanda_without_calibration_falls_back_to_magnitude():
    model = tiny_model("bert")
    a = apply(model, C.uniform(sparsity=0.5, sparsity_score="wanda"))
    b = apply(model, C.uniform(sparsity=0.5, sparsity_score="magnitude"))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
