"""Shared byte plumbing of GGML blocks: named fields split from / joined into rows of bytes, fp16 scalars.

A block layout is a tuple of (field name, bytes) in storage order, as in llama.cpp's
block structs (ggml-common.h); its total is the type's bytes per block. The encoders
and decoders of every type go through these helpers, so the layouts tested against
the type table are the layouts actually written.
"""

from __future__ import annotations

import numpy as np

Layout = tuple[tuple[str, int], ...]


def layout_bytes(layout: Layout) -> int:
    return sum(size for _, size in layout)


def join_fields(layout: Layout, fields: dict[str, np.ndarray]) -> np.ndarray:
    """[n_blocks, type_size] uint8 from per-field uint8 arrays [n_blocks, field bytes]."""
    parts = []
    for name, size in layout:
        part = np.ascontiguousarray(fields[name]).view(np.uint8).reshape(-1, size)
        parts.append(part)
    return np.concatenate(parts, axis=1)


def split_fields(layout: Layout, blocks: np.ndarray) -> dict[str, np.ndarray]:
    """Per-field uint8 views [n_blocks, field bytes] of [n_blocks, type_size] block bytes."""
    blocks = np.ascontiguousarray(blocks, dtype=np.uint8).reshape(-1, layout_bytes(layout))
    out, start = {}, 0
    for name, size in layout:
        out[name] = np.ascontiguousarray(blocks[:, start:start + size])
        start += size
    return out


def fp16_bytes(values: np.ndarray) -> np.ndarray:
    """float32 [n] or [n, 1] -> [n, 2] uint8 (little-endian IEEE half, round to nearest even)."""
    return np.ascontiguousarray(values.astype(np.float32).reshape(-1).astype("<f2")).view(np.uint8).reshape(-1, 2)


def fp16_values(field: np.ndarray) -> np.ndarray:
    """[n, 2] uint8 -> float32 [n, 1]: the scale exactly as the runtime reads it."""
    return np.ascontiguousarray(field).view("<f2").astype(np.float32).reshape(-1, 1)


def pack_crumbs(values: np.ndarray, bits: int, chunk: int) -> np.ndarray:
    """Pack `bits`-bit values the way ggml interleaves them: per chunk of `chunk` values, value
    (g * width + l) goes to bits [g * bits, (g + 1) * bits) of byte l, width = chunk * bits / 8.

    values [n, k] (k a multiple of chunk) -> [n, k * bits / 8] uint8. E.g. Q4_0: bits 4, chunk 32
    (byte l = q[l] | q[l + 16] << 4); Q3_K's high-bit mask: bits 1, chunk 256.
    """
    n, k = values.shape
    per = 8 // bits
    width = chunk // per
    parts = (values.astype(np.uint8) & ((1 << bits) - 1)).reshape(n, k // chunk, per, width)
    shifts = (np.arange(per, dtype=np.uint8) * bits).reshape(1, 1, per, 1)
    return np.bitwise_or.reduce(parts << shifts, axis=2).astype(np.uint8).reshape(n, k // per)


def read_crumbs(field: np.ndarray, bits: int, chunk: int) -> np.ndarray:
    """Inverse of pack_crumbs: [n, bytes] -> [n, bytes * 8 / bits] values (uint8)."""
    n, nbytes = field.shape
    per = 8 // bits
    width = chunk // per
    shifts = (np.arange(per, dtype=np.uint8) * bits).reshape(1, 1, per, 1)
    return ((field.reshape(n, nbytes // width, 1, width) >> shifts) & ((1 << bits) - 1)).reshape(n, -1)
