"""Bitstreams of b-bit codes: code i occupies bits [i*b, (i+1)*b), least significant bit first.

ceil(n * b / 8) bytes for n codes, whatever b is (3-, 5- and 6-bit codes cross
byte boundaries). A bitmask is the same stream with b = 1.
"""

from __future__ import annotations

import torch


def _bit_weights(n: int, device: torch.device) -> torch.Tensor:
    return (1 << torch.arange(n, dtype=torch.int32, device=device)).to(torch.int32)


def pack_bits(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack non-negative integer codes (< 2**bits) into a flat uint8 tensor of ceil(n*bits/8) bytes."""
    flat = codes.reshape(-1).to(torch.uint8)
    if bits == 8:
        return flat.clone()
    n = flat.numel()
    if 8 % bits == 0:  # 1, 2, 4 bits: whole codes per byte, no bit expansion needed
        per_byte = 8 // bits
        padded = torch.zeros(-(-n // per_byte) * per_byte, dtype=torch.int32, device=flat.device)
        padded[:n] = flat
        shifts = torch.arange(per_byte, dtype=torch.int32, device=flat.device) * bits
        return (padded.view(-1, per_byte) << shifts).sum(dim=1).to(torch.uint8)
    # general case: expand to bits, regroup by 8
    expanded = (flat.to(torch.int32).unsqueeze(1) >> torch.arange(bits, dtype=torch.int32, device=flat.device)) & 1
    stream = torch.zeros(-(-n * bits // 8) * 8, dtype=torch.int32, device=flat.device)
    stream[: n * bits] = expanded.reshape(-1)
    return (stream.view(-1, 8) * _bit_weights(8, flat.device)).sum(dim=1).to(torch.uint8)


def unpack_bits(packed: torch.Tensor, bits: int, n: int) -> torch.Tensor:
    """Inverse of pack_bits: the first n codes as int32."""
    data = packed.reshape(-1)
    if bits == 8:
        return data[:n].to(torch.int32)
    as_int = data.to(torch.int32)
    if 8 % bits == 0:
        per_byte = 8 // bits
        shifts = torch.arange(per_byte, dtype=torch.int32, device=data.device) * bits
        return ((as_int.unsqueeze(1) >> shifts) & ((1 << bits) - 1)).reshape(-1)[:n]
    stream = ((as_int.unsqueeze(1) >> torch.arange(8, dtype=torch.int32, device=data.device)) & 1).reshape(-1)
    return (stream[: n * bits].view(n, bits) * _bit_weights(bits, data.device)).sum(dim=1, dtype=torch.int32)


def pack_mask(mask: torch.Tensor) -> torch.Tensor:
    """A boolean tensor as a bitmask (row-major order)."""
    return pack_bits(mask.reshape(-1).to(torch.uint8), 1)


def unpack_mask(packed: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    n = 1
    for d in shape:
        n *= d
    return unpack_bits(packed, 1, n).to(torch.bool).view(shape)
