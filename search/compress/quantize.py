"""Group-wise round-to-nearest quantization (the seeds' formulas).

Asymmetric: s = (max - min) / (2^b - 1), z = round(-min / s),
q = clamp(round(r / s) + z, 0, 2^b - 1), r^ = s (q - z).
Symmetric: s = max|r| / (2^(b-1) - 1), q = clamp(round(r / s), -2^(b-1), 2^(b-1) - 1), r^ = s q;
stored as the unsigned code q + 2^(b-1).

Two storage-driven details (docs/recipes.md):
- the range always contains 0 (min <= 0 <= max), so the zero point fits in uint8
  and a pruned weight (0) is reconstructed exactly as 0;
- the scale is stored in float16, rounded *up* to the next float16, and the codes
  are computed with that stored scale, so every weight stays within half a step
  of its reconstruction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Quantized:
    codes: torch.Tensor  # int32 [rows, in], unsigned codes in [0, 2^b - 1]
    scales: torch.Tensor  # float16 [rows, groups]
    zeros: torch.Tensor | None  # uint8 [rows, groups], asymmetric only


def round_up_fp16(s: torch.Tensor) -> torch.Tensor:
    """Smallest float16 >= s (s > 0), so a stored scale never shrinks the covered range."""
    half = s.to(torch.float16)
    low = half.to(s.dtype) < s
    if low.any():
        bumped = (half.view(torch.int16) + 1).view(torch.float16)  # next float16 up (positive values)
        half = torch.where(low, bumped, half)
    return half


def _grouped(weight: torch.Tensor, group_size: int | None) -> tuple[torch.Tensor, int]:
    """[rows, in] -> [rows, groups, g], zero-padding a partial last group (0 is always in range)."""
    rows, cols = weight.shape
    g = cols if group_size is None else min(group_size, cols)
    groups = -(-cols // g)
    if groups * g != cols:
        weight = torch.nn.functional.pad(weight, (0, groups * g - cols))
    return weight.view(rows, groups, g), g


def quantize_groups(weight: torch.Tensor, bits: int, group_size: int | None, symmetric: bool) -> Quantized:
    """Quantize a [rows, in] float weight group-wise along the input dimension."""
    w = weight.to(torch.float32)
    rows, cols = w.shape
    grouped, _ = _grouped(w, group_size)
    if symmetric:
        qmax = 2 ** (bits - 1) - 1
        s = grouped.abs().amax(dim=-1) / qmax
    else:
        qmax = 2**bits - 1
        lo = grouped.amin(dim=-1).clamp(max=0.0)
        hi = grouped.amax(dim=-1).clamp(min=0.0)
        s = (hi - lo) / qmax
    s = torch.where(s > 0, s, torch.ones_like(s))  # an all-zero group: any scale reconstructs it exactly
    scales = round_up_fp16(s)
    s_used = scales.to(torch.float32).unsqueeze(-1)
    if symmetric:
        q = torch.clamp(torch.round(grouped / s_used), -(qmax + 1), qmax) + (qmax + 1)
        zeros = None
    else:
        z = torch.clamp(torch.round(-lo.unsqueeze(-1) / s_used), 0, qmax)
        q = torch.clamp(torch.round(grouped / s_used) + z, 0, qmax)
        zeros = z.squeeze(-1).to(torch.uint8)
    codes = q.view(rows, -1)[:, :cols].to(torch.int32)
    return Quantized(codes=codes, scales=scales, zeros=zeros)


def zero_codes(scales: torch.Tensor, zeros: torch.Tensor | None, bits: int, in_features: int,
               group_size: int | None) -> torch.Tensor:
    """[rows, in] code matrix whose every entry dequantizes to exactly 0."""
    rows = scales.shape[0]
    if zeros is None:
        return torch.full((rows, in_features), 2 ** (bits - 1), dtype=torch.int32, device=scales.device)
    g = in_features if group_size is None else min(group_size, in_features)
    return zeros.to(torch.int32).repeat_interleave(g, dim=1)[:, :in_features]


def dequantize_groups(codes: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor | None, bits: int,
                      group_size: int | None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[rows, in] codes -> [rows, in] weights: s (q - z), or s (q - 2^(b-1)) when symmetric."""
    rows, cols = codes.shape
    grouped, _ = _grouped(codes.to(torch.float32), group_size)
    offset = zeros.to(torch.float32).unsqueeze(-1) if zeros is not None else float(2 ** (bits - 1))
    w = (grouped - offset) * scales.to(torch.float32).unsqueeze(-1)
    return w.view(rows, -1)[:, :cols].to(dtype)
