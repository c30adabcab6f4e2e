"""Straight-through fake quantization: forward is round-to-nearest, backward is the identity in range."""

import pytest
import torch

from search.recovery.fake_quant import FakeQuantLinear, fake_quantize, quantize_codes, rtn_params


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("bits", [2, 3, 4])
def test_forward_is_round_to_nearest(bits, symmetric):
    torch.manual_seed(0)
    w = torch.randn(6, 40)
    scale, zero = rtn_params(w, bits, 16, symmetric)
    w_hat = fake_quantize(w, scale, zero, bits, 16, symmetric)
    codes = quantize_codes(w, scale, zero, bits, 16, symmetric)
    assert codes.min() >= 0 and codes.max() <= 2**bits - 1
    # every weight within half a step of its reconstruction (the range always covers the group)
    step = scale.repeat_interleave(16, dim=1)[:, :40]
    assert ((w - w_hat).abs() <= step / 2 + 1e-6).all()
    assert len(torch.unique(w_hat[0, :16])) <= 2**bits


def test_ste_gradient_is_identity_inside_the_clamp_range_and_zero_outside():
    w = torch.tensor([[-0.9, -0.31, 0.0, 0.24, 0.5, 3.0, -3.0, 0.9]], requires_grad=True)
    scale = torch.tensor([[0.25]])
    zero = torch.tensor([[4.0]])  # 3 bits: codes 0..7 cover [-1.0, 0.75]
    w_hat = fake_quantize(w, scale, zero, bits=3, group_size=None, symmetric=False)
    upstream = torch.arange(1.0, 9.0).unsqueeze(0)
    w_hat.backward(upstream)
    inside = torch.tensor([[True, True, True, True, True, False, False, False]])
    # inside: d w_hat / d w = 1 exactly, so the upstream gradient passes unchanged
    assert torch.equal(w.grad[inside], upstream[inside])
    assert torch.equal(w.grad[~inside], torch.zeros(3))
    assert torch.allclose(w_hat.detach(), torch.tensor([[-1.0, -0.25, 0.0, 0.25, 0.5, 0.75, -1.0, 0.75]]))


def test_scale_receives_a_gradient():
    torch.manual_seed(0)
    layer = FakeQuantLinear(torch.randn(4, 8), None, bits=2, group_size=4, symmetric=False)
    layer(torch.randn(3, 8)).pow(2).sum().backward()
    assert layer.log_scale.grad is not None and layer.log_scale.grad.abs().sum() > 0


def test_learn_selects_what_trains():
    w = torch.randn(4, 8)
    assert not FakeQuantLinear(w, None, 3, 4, False, learn="scales").weight.requires_grad
    assert not FakeQuantLinear(w, None, 3, 4, False, learn="weights").log_scale.requires_grad


def test_mask_keeps_pruned_weights_at_zero():
    torch.manual_seed(0)
    w = torch.randn(4, 8)
    mask = torch.rand(4, 8) > 0.5
    layer = FakeQuantLinear(w * mask, None, 3, 4, False, mask=mask)
    with torch.no_grad():
        layer.weight.add_(1.0)  # training moved the pruned entries: they must still reconstruct 0
    assert torch.equal(layer.dequantized()[~mask], torch.zeros(int((~mask).sum())))
