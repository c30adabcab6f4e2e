"""Fake quantization with the straight-through estimator (STE).

Forward:  q = clamp(round(w / s) + z, qmin, qmax);  w_hat = (q - z) * s
Backward: round() is treated as the identity (Bengio et al. 2013, arXiv:1308.3432), so
d w_hat / d w = 1 inside the clamp range and 0 outside it; the scale s gets the LSQ
gradient (Esser et al. 2020, "Learned Step Size Quantization", arXiv:1902.08153).

Conventions are those of the packed storage (search/compress/quantize.py), so codes
repack without conversion: the input columns of each output row are split into groups
of ``group_size`` (the last one zero-padded); ``group_size=None`` is one group per row.
Codes are unsigned, in [0, 2^b - 1]; asymmetric groups have an integer zero point,
symmetric ones the fixed offset z = 2^(b-1).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """round(x) forward, identity backward."""
    return x + (torch.round(x) - x).detach()


def code_range(bits: int, symmetric: bool = False) -> tuple[int, int]:
    """Unsigned codes for both modes; symmetric ones are offset by 2^(b-1)."""
    return 0, 2**bits - 1


def grouped(w: torch.Tensor, group_size: int | None) -> tuple[torch.Tensor, int]:
    """[out, in] -> [out, groups, group_size] (zero-padded), and the padding added."""
    out_f, in_f = w.shape
    g = in_f if group_size is None else min(group_size, in_f)
    pad = (-in_f) % g
    if pad:
        w = F.pad(w, (0, pad))
    return w.reshape(out_f, -1, g), pad


def ungrouped(wg: torch.Tensor, pad: int) -> torch.Tensor:
    w = wg.reshape(wg.shape[0], -1)
    return w[:, : w.shape[1] - pad] if pad else w


def rtn_params(w: torch.Tensor, bits: int, group_size: int | None, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Round-to-nearest scales and zero points [out, groups] from each group's range."""
    wg, _ = grouped(w.float(), group_size)
    qmin, qmax = code_range(bits, symmetric)
    if symmetric:
        scale = wg.abs().amax(-1) / (2 ** (bits - 1) - 1)
        zero = torch.full_like(scale, 2 ** (bits - 1))
    else:
        lo = wg.amin(-1).clamp(max=0)
        hi = wg.amax(-1).clamp(min=0)
        scale = (hi - lo) / (qmax - qmin)
        zero = torch.clamp(torch.round(-lo / scale.clamp_min(1e-12)), qmin, qmax)
    return scale.clamp_min(1e-8), zero


def fake_quantize(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int, group_size: int | None,
                  symmetric: bool) -> torch.Tensor:
    """Dequantized weights w_hat with STE gradients to w and to scale."""
    qmin, qmax = code_range(bits, symmetric)
    wg, pad = grouped(w, group_size)
    s = scale.unsqueeze(-1)
    z = zero.unsqueeze(-1)
    q = torch.clamp(round_ste(wg / s) + z, qmin, qmax)
    return ungrouped((q - z) * s, pad)


def quantize_codes(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int, group_size: int | None,
                   symmetric: bool) -> torch.Tensor:
    """The integer codes q (as int32, [out, in]) of w on a given scale/zero grid."""
    qmin, qmax = code_range(bits, symmetric)
    wg, pad = grouped(w.detach().float(), group_size)
    q = torch.clamp(torch.round(wg / scale.unsqueeze(-1)) + zero.unsqueeze(-1), qmin, qmax)
    return ungrouped(q, pad).to(torch.int32)


class FakeQuantLinear(torch.nn.Module):
    """A linear layer trained through fake quantization: float32 master weights, learnable scales.

    ``learn`` picks what trains: "weights", "scales" or "both" (the zero points stay fixed integers).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, bits: int, group_size: int | None,
                 symmetric: bool, scale: torch.Tensor | None = None, zero: torch.Tensor | None = None,
                 learn: str = "both", mask: torch.Tensor | None = None):
        super().__init__()
        if learn not in ("weights", "scales", "both"):
            raise ValueError(f"learn must be 'weights', 'scales' or 'both', not {learn!r}")
        self.bits, self.group_size, self.symmetric = bits, group_size, symmetric
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        if scale is None or zero is None:
            scale, zero = rtn_params(weight, bits, group_size, symmetric)
        self.weight = torch.nn.Parameter(weight.detach().float().clone(), requires_grad=learn != "scales")
        # the scale is learned in log space: Adam's step is then a relative change, whatever the scale's size
        self.log_scale = torch.nn.Parameter(scale.detach().float().clamp_min(1e-8).log(),
                                            requires_grad=learn != "weights")
        self.register_buffer("zero", zero.detach().float().clone())
        # pruned weights stay pruned: they quantize to the zero point, which reconstructs 0 exactly
        self.register_buffer("mask", None if mask is None else mask.detach().to(torch.bool).clone())
        self.bias = None if bias is None else torch.nn.Parameter(bias.detach().float().clone())

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp()

    def masked_weight(self) -> torch.Tensor:
        return self.weight if self.mask is None else self.weight * self.mask

    def dequantized(self) -> torch.Tensor:
        return fake_quantize(self.masked_weight(), self.scale, self.zero, self.bits,
                             self.group_size, self.symmetric)

    def codes(self, scale: torch.Tensor | None = None) -> torch.Tensor:
        """Integer codes of the trained weights on the learned grid (or on ``scale``, e.g. its float16 copy)."""
        s = self.scale.detach() if scale is None else scale.float()
        return quantize_codes(self.masked_weight().detach(), s, self.zero, self.bits, self.group_size,
                              self.symmetric)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.dequantized()
        b = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, w.to(x.dtype), b)

    def extra_repr(self) -> str:
        return (f"{self.in_features}->{self.out_features}, bits={self.bits}, group_size={self.group_size}, "
                f"symmetric={self.symmetric}")


def fake_quant_dense(linear: Any, bits: int, group_size: int | None, symmetric: bool,
                     learn: str = "both") -> FakeQuantLinear:
    """A FakeQuantLinear from a plain nn.Linear, starting at round-to-nearest."""
    return FakeQuantLinear(linear.weight, linear.bias, bits, group_size, symmetric, learn=learn)
