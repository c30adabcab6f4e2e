"""The 32-weight block types Q8_0, Q5_0, Q5_1, Q4_0, Q4_1: llama.cpp's reference quantizer and its bytes.

Layouts (ggml-common.h, storage order): Q4_0 {d fp16, qs[16]}, Q4_1 {d, m, qs[16]},
Q5_0 {d, qh[4], qs[16]}, Q5_1 {d, m, qh[4], qs[16]}, Q8_0 {d, qs[32] int8}.
4-bit codes: byte l holds weight l (low nibble) and weight l + 16 (high nibble);
the 5th bit of weight j is bit j of the little-endian 32-bit qh.

Quantization follows llama.cpp's quantize_row_*_ref exactly, so the bytes equal those
of llama.cpp and of the `gguf` package: the scale is computed in float32 and the codes
with that float32 scale (only the stored d / m are rounded to fp16);
- symmetric 4/5-bit: d = v / -2^(b-1) with v the weight of largest magnitude (sign kept),
  q = min(2^b - 1, trunc(x / d + 2^(b-1) + 0.5));
- with minimum: d = (max - min) / (2^b - 1), q = min(2^b - 1, trunc((x - min) / d + 0.5));
- Q8_0: d = max|x| / 127, q = round-half-away(x / d).
Dequantization: d * (q - 2^(b-1)), d * q + m, d * q, in float32 as the runtime does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from search.formats.block_bytes import (
    Layout,
    fp16_bytes,
    fp16_values,
    join_fields,
    pack_crumbs,
    read_crumbs,
    split_fields,
)

QK = 32

LAYOUTS: dict[str, Layout] = {
    "Q4_0": (("d", 2), ("qs", 16)),
    "Q4_1": (("d", 2), ("m", 2), ("qs", 16)),
    "Q5_0": (("d", 2), ("qh", 4), ("qs", 16)),
    "Q5_1": (("d", 2), ("m", 2), ("qh", 4), ("qs", 16)),
    "Q8_0": (("d", 2), ("qs", 32)),
}
_BITS = {"Q4_0": 4, "Q4_1": 4, "Q5_0": 5, "Q5_1": 5, "Q8_0": 8}


def _inverse(d: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)


def _round_half_away(v: np.ndarray) -> np.ndarray:
    """C's roundf: halves go away from zero (numpy's round goes to even). floor(|v| + 0.5) would
    round 0.49999997 up in float32, so the fraction is compared instead."""
    a = np.abs(v)
    whole = np.floor(a)
    return np.sign(v) * (whole + (a - whole >= np.float32(0.5)))


@dataclass
class LegacyFit:
    """A block's parameters as the encoder computed them (float32; d and m are stored as fp16) and the
    codes as stored: uint8 in [0, 2^b - 1], or int8 for Q8_0."""

    d: np.ndarray  # float32 [n, 1]
    q: np.ndarray  # [n, 32]
    m: np.ndarray | None = None  # float32 [n, 1], Q4_1 / Q5_1


def fit_legacy(x: np.ndarray, name: str) -> LegacyFit:
    """llama.cpp's reference quantizer: the block scale (and minimum) and its codes, float32 [n, 32] in."""
    x = np.asarray(x, dtype=np.float32).reshape(-1, QK)
    bits = _BITS[name]
    if name == "Q8_0":
        d = (np.abs(x).max(axis=1, keepdims=True) / np.float32(127)).astype(np.float32)
        return LegacyFit(d=d, q=_round_half_away(x * _inverse(d)).astype(np.int8))
    if name in ("Q4_0", "Q5_0"):
        half = np.float32(2 ** (bits - 1))
        peak = np.take_along_axis(x, np.abs(x).argmax(axis=1, keepdims=True), axis=1)
        d = (peak / -half).astype(np.float32)
        q = np.trunc(x * _inverse(d) + (half + np.float32(0.5))).astype(np.uint8)
        return LegacyFit(d=d, q=np.minimum(q, 2**bits - 1))
    lo = x.min(axis=1, keepdims=True)  # Q4_1, Q5_1
    d = ((x.max(axis=1, keepdims=True) - lo) / np.float32(2**bits - 1)).astype(np.float32)
    q = np.minimum(np.trunc((x - lo) * _inverse(d) + np.float32(0.5)).astype(np.uint8), 2**bits - 1)
    return LegacyFit(d=d, q=q, m=lo)


def pack_legacy(fit: LegacyFit, name: str) -> np.ndarray:
    """The block bytes of `fit` (any codes in the stored range, e.g. GPTQ's) -> uint8 [n_blocks, bytes]."""
    fields: dict[str, np.ndarray] = {"d": fp16_bytes(fit.d)}
    if name == "Q8_0":
        fields["qs"] = fit.q.astype(np.int8).view(np.uint8)
    else:
        q = fit.q.astype(np.uint8)
        fields["qs"] = pack_crumbs(q & 0x0F, 4, QK)
        if _BITS[name] == 5:
            fields["qh"] = np.packbits(q >> 4, axis=1, bitorder="little")
        if fit.m is not None:
            fields["m"] = fp16_bytes(fit.m)
    return join_fields(LAYOUTS[name], fields)


def quantize_legacy(x: np.ndarray, name: str) -> np.ndarray:
    """float32 [n_blocks, 32] -> uint8 [n_blocks, bytes per block] of type `name`."""
    return pack_legacy(fit_legacy(x, name), name)


def dequantize_legacy(blocks: np.ndarray, name: str) -> np.ndarray:
    """uint8 [n_blocks, bytes per block] -> float32 [n_blocks, 32], as llama.cpp reconstructs them."""
    f = split_fields(LAYOUTS[name], blocks)
    d = fp16_values(f["d"])
    if name == "Q8_0":
        return f["qs"].view(np.int8).astype(np.float32) * d
    q = read_crumbs(f["qs"], 4, QK)
    if "qh" in f:
        q = q | (np.unpackbits(f["qh"], axis=1, bitorder="little") << 4)
    if "m" in f:
        return d * q.astype(np.float32) + fp16_values(f["m"])
    offset = 2 ** (_BITS[name] - 1)
    return d * (q.astype(np.int16) - offset).astype(np.float32)
