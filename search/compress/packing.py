"""Bitstreams of b-bit codes: code i occupies bits [i*b, (i+1)*b), least significant bit first.

ceil(n * b / 8) bytes for n codes, whatever b is (3-, 5- and 6-bit codes cross
byte boundaries). A bitmask is the same stream with b = 1.

Eight codes of b bits fill exactly b bytes, so both directions work on chunks of
8 codes held in one int64 (at most 64 bits), with no per-bit expansion.
"""

from __future__ import annotations

import torch


def _shifts(count: int, step: int, device: torch.device) -> torch.Tensor:
    return torch.arange(count, dtype=torch.int64, device=device) * step


def pack_bits(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack non-negative integer codes (< 2**bits) into a flat uint8 tensor of ceil(n*bits/8) bytes."""
    flat = codes.reshape(-1)
    n = flat.numel()
    if bits == 8:
        return flat.to(torch.uint8).clone()
    chunks = torch.zeros(-(-n // 8) * 8, dtype=torch.int64, device=flat.device)
    chunks[:n] = flat
    words = (chunks.view(-1, 8) << _shifts(8, bits, flat.device)).sum(dim=1)  # 8 codes -> 8*bits bits
    out = (words.unsqueeze(1) >> _shifts(bits, 8, flat.device)) & 0xFF  # -> `bits` bytes
    return out.reshape(-1)[: (n * bits + 7) // 8].to(torch.uint8)


def unpack_bits(packed: torch.Tensor, bits: int, n: int) -> torch.Tensor:
    """Inverse of pack_bits: the first n codes as int32."""
    data = packed.reshape(-1)
    if bits == 8:
        return data[:n].to(torch.int32)
    words_needed = -(-n // 8)
    padded = torch.zeros(words_needed * bits, dtype=torch.int64, device=data.device)
    padded[: data.numel()] = data[: words_needed * bits]
    words = (padded.view(-1, bits) << _shifts(bits, 8, data.device)).sum(dim=1)
    codes = (words.unsqueeze(1) >> _shifts(8, bits, data.device)) & ((1 << bits) - 1)
    return codes.reshape(-1)[:n].to(torch.int32)


def pack_mask(mask: torch.Tensor) -> torch.Tensor:
    """A boolean tensor as a bitmask (row-major order)."""
    return pack_bits(mask.reshape(-1), 1)


def unpack_mask(packed: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    n = 1
    for d in shape:
        n *= d
    return unpack_bits(packed, 1, n).to(torch.bool).view(shape)
