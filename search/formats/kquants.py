"""The K-quant types Q2_K, Q3_K, Q4_K, Q5_K, Q6_K: super-blocks of 256 weights, bytes as llama.cpp stores them.

Layouts (ggml-common.h block structs, storage order) and how a weight i of the block is found:
- Q2_K {scales[16], qs[64], d, dmin}: 16 sub-blocks of 16; scales byte j = sc_j | m_j << 4;
  2-bit code of weight i in qs[32 (i // 128) + i % 32] bits 2 ((i % 128) // 32);
  w = d sc q - dmin m.
- Q3_K {hmask[32], qs[64], scales[12], d}: 16 sub-blocks of 16; u = q + 4 in [0, 8): low 2 bits as
  in Q2_K, bit 2 of weight i in hmask[i % 32] bit i // 32; 6-bit scales v = sc + 32: low nibbles
  of v_j and v_{j+8} in byte j (j < 8), high 2 bits of v_{4s+k} in byte 8 + k bits 2s; w = d sc q.
- Q4_K {d, dmin, scales[12], qs[128]}: 8 sub-blocks of 32; 4-bit code of weight i: nibble
  (i % 64) // 32 of qs[32 (i // 64) + i % 32]; 6-bit sc, m packed in 12 bytes (below); w = d sc q - dmin m.
- Q5_K {d, dmin, scales[12], qh[32], qs[128]}: Q4_K plus the 5th bit of weight i in qh[i % 32] bit i // 32.
- Q6_K {ql[128], qh[64], scales[16] int8, d}: 16 sub-blocks of 16; u = q + 32 in [0, 64): low
  nibble of weight i in ql[64 (i // 128) + i % 64] nibble (i % 128) // 64; high 2 bits in
  qh[32 (i // 128) + i % 32] bits 2 ((i % 128) // 32); w = d sc q.
Dequantization multiplies in the runtime's order ((d * sc) * q - dmin * m, in float32), so the
weights equal the runtime's bit for bit.
"""

from __future__ import annotations

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
from search.formats.kquant_fit import QK_K, Fit, fit_symmetric, fit_with_min

LAYOUTS: dict[str, Layout] = {
    "Q2_K": (("scales", 16), ("qs", 64), ("d", 2), ("dmin", 2)),
    "Q3_K": (("hmask", 32), ("qs", 64), ("scales", 12), ("d", 2)),
    "Q4_K": (("d", 2), ("dmin", 2), ("scales", 12), ("qs", 128)),
    "Q5_K": (("d", 2), ("dmin", 2), ("scales", 12), ("qh", 32), ("qs", 128)),
    "Q6_K": (("ql", 128), ("qh", 64), ("scales", 16), ("d", 2)),
}


# ---- the 12-byte scale fields -----------------------------------------------------------------

def _pack_q4k_scales(sc: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Eight 6-bit scales and mins: bytes 0-3 sc_j | (sc_{j+4} >> 4) << 6, bytes 4-7 the same for m,
    bytes 8-11 (sc_{j+4} & 15) | (m_{j+4} & 15) << 4."""
    sc, m = sc.astype(np.uint8), m.astype(np.uint8)
    first = (sc[:, :4] & 63) | ((sc[:, 4:] >> 4) << 6)
    second = (m[:, :4] & 63) | ((m[:, 4:] >> 4) << 6)
    third = (sc[:, 4:] & 15) | ((m[:, 4:] & 15) << 4)
    return np.concatenate([first, second, third], axis=1)


def _read_q4k_scales(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    first, second, third = field[:, :4], field[:, 4:8], field[:, 8:]
    sc = np.concatenate([first & 63, (third & 15) | ((first >> 6) << 4)], axis=1)
    m = np.concatenate([second & 63, (third >> 4) | ((second >> 6) << 4)], axis=1)
    return sc, m


def _pack_q3k_scales(v: np.ndarray) -> np.ndarray:
    """Sixteen 6-bit values: low nibbles two per byte (j, j + 8), high 2 bits four per byte."""
    return np.concatenate([pack_crumbs(v & 15, 4, 16), pack_crumbs(v >> 4, 2, 16)], axis=1)


def _read_q3k_scales(field: np.ndarray) -> np.ndarray:
    return read_crumbs(field[:, :8], 4, 16) | (read_crumbs(field[:, 8:], 2, 16) << 4)


# ---- encode -----------------------------------------------------------------------------------

def _fit(x: np.ndarray, name: str) -> Fit:
    if name == "Q2_K":
        return fit_with_min(x, 16, 3, 15)
    if name == "Q3_K":
        return fit_symmetric(x, 16, 3, 31)
    if name == "Q4_K":
        return fit_with_min(x, 32, 15, 63)
    if name == "Q5_K":
        return fit_with_min(x, 32, 31, 63)
    return fit_symmetric(x, 16, 31, 127)  # Q6_K


def fit_kquant(x: np.ndarray, name: str) -> Fit:
    """The super-block scales, sub-block scales / minimums and codes of float32 [n_blocks, 256]."""
    return _fit(np.asarray(x, dtype=np.float32).reshape(-1, QK_K), name)


def pack_kquant(fit: Fit, name: str) -> np.ndarray:
    """The block bytes of `fit` (any codes in the type's range, e.g. GPTQ's) -> uint8 [n_blocks, bytes]."""
    f: dict[str, np.ndarray] = {"d": fp16_bytes(fit.d)}
    if fit.dmin is not None:
        f["dmin"] = fp16_bytes(fit.dmin)
    if name == "Q2_K":
        f["scales"] = (fit.sc | (fit.m << 4)).astype(np.uint8)
        f["qs"] = pack_crumbs(fit.q, 2, 128)
    elif name == "Q3_K":
        u = fit.q + 4
        f["hmask"] = pack_crumbs(u >> 2, 1, QK_K)
        f["qs"] = pack_crumbs(u & 3, 2, 128)
        f["scales"] = _pack_q3k_scales(fit.sc + 32)
    elif name in ("Q4_K", "Q5_K"):
        f["scales"] = _pack_q4k_scales(fit.sc, fit.m)
        f["qs"] = pack_crumbs(fit.q & 15, 4, 64)
        if name == "Q5_K":
            f["qh"] = pack_crumbs(fit.q >> 4, 1, QK_K)
    else:  # Q6_K
        u = fit.q + 32
        f["ql"] = pack_crumbs(u & 15, 4, 128)
        f["qh"] = pack_crumbs(u >> 4, 2, 128)
        f["scales"] = fit.sc.astype(np.int8).view(np.uint8)
    return join_fields(LAYOUTS[name], f)


def quantize_kquant(x: np.ndarray, name: str) -> np.ndarray:
    """float32 [n_blocks, 256] -> uint8 [n_blocks, bytes per block] of type `name`."""
    return pack_kquant(fit_kquant(x, name), name)


# ---- decode -----------------------------------------------------------------------------------

def _per_weight(v: np.ndarray, sub: int) -> np.ndarray:
    """[n, subs] -> [n, subs, 1], to broadcast against codes [n, subs, sub]."""
    return v.reshape(v.shape[0], QK_K // sub, 1)


def dequantize_kquant(blocks: np.ndarray, name: str) -> np.ndarray:
    """uint8 [n_blocks, bytes per block] -> float32 [n_blocks, 256], as llama.cpp reconstructs them."""
    f = split_fields(LAYOUTS[name], blocks)
    n = f["d"].shape[0]
    d = fp16_values(f["d"])
    if name == "Q2_K":
        sc, m, sub = f["scales"] & 15, f["scales"] >> 4, 16
        q = read_crumbs(f["qs"], 2, 128)
    elif name == "Q3_K":
        sc, m, sub = _read_q3k_scales(f["scales"]).astype(np.int8) - 32, None, 16
        q = (read_crumbs(f["qs"], 2, 128) | (read_crumbs(f["hmask"], 1, QK_K) << 2)).astype(np.int8) - 4
    elif name in ("Q4_K", "Q5_K"):
        (sc, m), sub = _read_q4k_scales(f["scales"]), 32
        q = read_crumbs(f["qs"], 4, 64)
        if name == "Q5_K":
            q = q | (read_crumbs(f["qh"], 1, QK_K) << 4)
    else:  # Q6_K
        sc, m, sub = f["scales"].view(np.int8), None, 16
        q = (read_crumbs(f["ql"], 4, 128) | (read_crumbs(f["qh"], 2, 128) << 4)).astype(np.int8) - 32
    codes = q.astype(np.float32).reshape(n, QK_K // sub, sub)
    w = _per_weight(d * sc.astype(np.float32), sub) * codes
    if m is not None:
        w = w - _per_weight(fp16_values(f["dmin"]) * m.astype(np.float32), sub)
    return w.reshape(n, QK_K)
