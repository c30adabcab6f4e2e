"""Choosing the scales of K-quant super-blocks (devicefit's own search, not llama.cpp's).

A super-block of 256 weights is cut into sub-blocks (16 or 32 weights). Every sub-block
gets a float scale (and, for the types with a minimum, an offset) from a small grid search
with a least-squares refit; then the sub-scales are themselves quantized to small integers
against one fp16 super-scale, exactly as the runtime will read them. The codes are chosen
last, as the nearest codes under the *stored* scales, so what the search scores is the
weight llama.cpp reconstructs.

Symmetric types (Q3_K, Q6_K): w = d * sc * q, q in [qmin, qmax] with qmin = -(qmax + 1), sc a
signed integer. The sub-scale's sign is free, so the weight of largest magnitude is mapped
to the wider negative end qmin (one more level of range).
Types with a minimum (Q2_K, Q4_K, Q5_K): w = d * sc * q - dmin * m, q in [0, qmax], sc and m
unsigned, so the covered range always contains 0.
Each integer sub-scale (and minimum) is the floor or the ceiling of its ideal value, whichever
reconstructs the sub-block better. On a Gaussian weight the result is 1-11% more accurate than
llama.cpp's own quantizer without an importance matrix (docs/gguf_formats.md), at 0.3-0.6 us
per weight in numpy (search.compress.block_cache keeps the encodings a search reuses).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QK_K = 256
_SYM_GRID = np.linspace(0.80, 1.15, 15, dtype=np.float32)  # peak mapped to qmin * factor
_ASYM_GRID = np.linspace(0.75, 1.10, 15, dtype=np.float32)  # step = range / qmax * factor


@dataclass
class Fit:
    d: np.ndarray  # float32 [n, 1], fp16-representable (what the block stores)
    sc: np.ndarray  # int32 [n, subs]
    q: np.ndarray  # int32 [n, 256]: signed codes (symmetric) or unsigned codes
    dmin: np.ndarray | None = None  # float32 [n, 1], types with a minimum
    m: np.ndarray | None = None  # int32 [n, subs]


def _fp16(v: np.ndarray) -> np.ndarray:
    return v.astype(np.float16).astype(np.float32)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, 0 where b == 0 (used on per-sub-block arrays only)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b != 0, a / np.where(b != 0, b, 1), np.float32(0)).astype(np.float32)


def _codes(x: np.ndarray, scale: np.ndarray, lo: int, hi: int, offset: np.ndarray | None = None) -> np.ndarray:
    """Nearest codes clamp(round((x + offset) / scale), lo, hi); a zero scale gives code 0 (or lo)."""
    t = x + offset if offset is not None else x.copy()
    t *= _div(np.float32(1), scale)
    np.rint(t, out=t)
    return np.clip(t, lo, hi, out=t)


def _sq_err(x: np.ndarray, scale: np.ndarray, q: np.ndarray, offset: np.ndarray | None = None) -> np.ndarray:
    """Per sub-block sum of (x - (scale q - offset))^2."""
    r = q * scale
    if offset is not None:
        r -= offset
    r -= x
    np.square(r, out=r)
    return r.sum(axis=-1)


class _Best:
    """Per sub-block argmin of the squared error over candidate settings."""

    def __init__(self) -> None:
        self.err: np.ndarray | None = None
        self.values: dict[str, np.ndarray] = {}

    def offer(self, err: np.ndarray, **values: np.ndarray) -> None:
        if self.err is None:
            self.err, self.values = err, values
            return
        better = err < self.err
        self.err = np.where(better, err, self.err)
        for key, v in values.items():
            mask = better.reshape(better.shape + (1,) * (v.ndim - better.ndim))
            self.values[key] = np.where(mask, v, self.values[key])


def fit_symmetric(x: np.ndarray, sub: int, qmax: int, sc_max: int) -> Fit:
    """x float32 [n, 256]; sub-scales are integers in [-(sc_max + 1), sc_max]."""
    n = x.shape[0]
    qmin, sc_min = -(qmax + 1), -(sc_max + 1)
    xs = x.reshape(n, -1, sub)
    peak = np.take_along_axis(xs, np.abs(xs).argmax(axis=-1, keepdims=True), axis=-1)
    scale = _Best()
    for factor in _SYM_GRID:
        s = peak / np.float32(qmin * factor)
        q = _codes(xs, s, qmin, qmax)
        scale.offer(_sq_err(xs, s, q), s=s)
        refit = _div((xs * q).sum(-1, keepdims=True), (q * q).sum(-1, keepdims=True))  # least squares
        scale.offer(_sq_err(xs, refit, _codes(xs, refit, qmin, qmax)), s=refit)
    s = scale.values["s"][..., 0]
    big = np.take_along_axis(s, np.abs(s).argmax(axis=1, keepdims=True), axis=1)
    d = _fp16(big / np.float32(sc_min))
    ratio = _div(s, d)
    stored = _Best()
    for sc in (np.floor(ratio), np.ceil(ratio)):  # the integer sub-scale whose reconstruction is closer
        sc = np.clip(sc, sc_min, sc_max)
        eff = (d * sc)[..., None]
        q = _codes(xs, eff, qmin, qmax)
        stored.offer(_sq_err(xs, eff, q), sc=sc, q=q)
    return Fit(d=d, sc=stored.values["sc"].astype(np.int32), q=stored.values["q"].reshape(n, -1).astype(np.int32))


def fit_with_min(x: np.ndarray, sub: int, qmax: int, int_max: int) -> Fit:
    """x float32 [n, 256]; w = a q - b per sub-block, a = d sc, b = dmin m with sc, m in [0, int_max]."""
    n = x.shape[0]
    xs = x.reshape(n, -1, sub)
    lo = np.minimum(xs.min(-1, keepdims=True), 0)
    span = xs.max(-1, keepdims=True) - lo
    count, sx = np.float32(sub), xs.sum(-1, keepdims=True)
    scale = _Best()
    for factor in _ASYM_GRID:
        a0 = span / np.float32(qmax) * factor
        q = _codes(xs, a0, 0, qmax, -lo)
        scale.offer(_sq_err(xs, a0, q, -lo), a=a0, b=-lo)
        # least squares x ~ a q + c with c = -b <= 0 (the range must contain 0)
        sq, sqq, sxq = q.sum(-1, keepdims=True), (q * q).sum(-1, keepdims=True), (xs * q).sum(-1, keepdims=True)
        a = _div(count * sxq - sq * sx, count * sqq - sq * sq)
        c = (sx - a * sq) / count
        free = c > 0
        a = np.where(free, _div(sxq, sqq), a)
        b = np.where(free, np.float32(0), -c)
        a = np.where(a > 0, a, a0)
        scale.offer(_sq_err(xs, a, _codes(xs, a, 0, qmax, b), b), a=a, b=b)
    a, b = scale.values["a"][..., 0], scale.values["b"][..., 0]
    d = _fp16(a.max(axis=1, keepdims=True) / np.float32(int_max))
    dmin = _fp16(b.max(axis=1, keepdims=True) / np.float32(int_max))
    ra, rb = _div(a, d), _div(b, dmin)
    stored = _Best()
    for sc_raw in (np.floor(ra), np.ceil(ra)):  # the integer pair whose reconstruction is closest
        for m_raw in (np.floor(rb), np.ceil(rb)):
            sc, m = np.clip(sc_raw, 0, int_max), np.clip(m_raw, 0, int_max)
            eff_a, eff_b = (d * sc)[..., None], (dmin * m)[..., None]
            q = _codes(xs, eff_a, 0, qmax, eff_b)
            stored.offer(_sq_err(xs, eff_a, q, eff_b), sc=sc, m=m, q=q)
    v = stored.values
    return Fit(d=d, sc=v["sc"].astype(np.int32), q=v["q"].reshape(n, -1).astype(np.int32), dmin=dmin,
               m=v["m"].astype(np.int32))
