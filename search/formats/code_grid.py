"""A GGUF block type as a grid of codes: every weight is a * q + b, q an integer in [qmin, qmax].

Every quantized type reconstructs weight i of a block from an integer code and parameters
shared by the block or its sub-block: Q4_0 d (q - 8), Q4_1 d q + m, Q8_0 d q, K-quants
(d sc) q - dmin m. fit_grid runs the type's own encoder to fix those parameters and
exposes the per-weight (a, b) exactly as the runtime computes them (float32, same order of
operations), so ``values(codes)`` equals what llama.cpp dequantizes from ``pack_codes(grid,
codes)`` bit for bit, for *any* codes in range. A rounding method other than the encoder's
(GPTQ) can therefore choose its own codes on the grid and still write valid blocks.

Codes here are signed where the type's dequantization subtracts an offset (Q4_0 / Q5_0 store
q + 8 / q + 16; Q3_K, Q6_K store q + 4, q + 32); the packers add the offsets back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from search.formats.block_bytes import fp16_bytes, fp16_values
from search.formats.blocks_legacy import QK, LegacyFit, fit_legacy, pack_legacy
from search.formats.kquant_fit import QK_K, Fit
from search.formats.kquants import fit_kquant, pack_kquant

# (qmin, qmax) of the grid codes; Q8_0 leaves out -128, which int8 holds but SIMD kernels that take
# |q| with a sign trick (llama.cpp's x86 dot products) would read as +128
CODE_RANGE = {
    "Q8_0": (-127, 127), "Q5_1": (0, 31), "Q5_0": (-16, 15), "Q4_1": (0, 15), "Q4_0": (-8, 7),
    "Q6_K": (-32, 31), "Q5_K": (0, 31), "Q4_K": (0, 15), "Q3_K": (-4, 3), "Q2_K": (0, 3),
}
_STORED_OFFSET = {"Q5_0": 16, "Q4_0": 8}  # legacy stored code = grid code + offset
_SUB_BLOCK = {"Q6_K": 16, "Q5_K": 32, "Q4_K": 32, "Q3_K": 16, "Q2_K": 16}


@dataclass
class CodeGrid:
    """The grid of `n` blocks of type `name`: weight = scale * code (+ offset), per weight."""

    name: str
    fit: LegacyFit | Fit  # the encoder's block parameters (and its own codes)
    scale: np.ndarray  # float32 [n, block]
    offset: np.ndarray | None  # float32 [n, block]; None where the type has no minimum
    qmin: int
    qmax: int

    @property
    def codes(self) -> np.ndarray:
        """The type's own encoder's codes (round-to-nearest under its scale search), int32 [n, block]."""
        return self.fit.q.astype(np.int32) - _STORED_OFFSET.get(self.name, 0)

    def values(self, codes: np.ndarray) -> np.ndarray:
        """float32 [n, block]: the weights the runtime reconstructs from these codes."""
        w = self.scale * codes.astype(np.float32)
        return w + self.offset if self.offset is not None else w

    def nearest(self, x: np.ndarray) -> np.ndarray:
        """int32 [n, block]: the code whose value is closest to x (0 on a zero scale)."""
        t = x.astype(np.float32) - self.offset if self.offset is not None else x.astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(self.scale != 0, t / np.where(self.scale != 0, self.scale, 1), 0)
        return np.clip(np.rint(t), self.qmin, self.qmax).astype(np.int32)


def fit_grid(x: np.ndarray, name: str) -> CodeGrid:
    """The grid the type's encoder fits to float32 [n_blocks, block_size] weights."""
    qmin, qmax = CODE_RANGE[name]
    if name in _SUB_BLOCK:
        fit = fit_kquant(x, name)
        sub = _SUB_BLOCK[name]
        scale = np.repeat(fit.d * fit.sc.astype(np.float32), sub, axis=1)  # (d * sc) * q, the runtime's order
        offset = None
        if fit.dmin is not None:
            offset = -np.repeat(fit.dmin * fit.m.astype(np.float32), sub, axis=1)  # x - y == x + (-y) exactly
        return CodeGrid(name, fit, scale, offset, qmin, qmax)
    fit = fit_legacy(x, name)
    scale = np.repeat(_stored(fit.d), QK, axis=1)
    offset = np.repeat(_stored(fit.m), QK, axis=1) if fit.m is not None else None
    return CodeGrid(name, fit, scale, offset, qmin, qmax)


def pack_codes(grid: CodeGrid, codes: np.ndarray) -> np.ndarray:
    """uint8 [n_blocks, type_size]: the grid's block parameters with these codes (int [n, block] in range)."""
    codes = np.asarray(codes)
    if codes.shape != grid.scale.shape:
        raise ValueError(f"{grid.name} codes must have shape {grid.scale.shape}, not {codes.shape}")
    if codes.size and (codes.min() < grid.qmin or codes.max() > grid.qmax):
        raise ValueError(f"{grid.name} codes must lie in [{grid.qmin}, {grid.qmax}]")
    if isinstance(grid.fit, Fit):
        return pack_kquant(dataclasses.replace(grid.fit, q=codes.astype(np.int32)), grid.name)
    stored = codes + _STORED_OFFSET.get(grid.name, 0)
    q = stored.astype(np.int8) if grid.name == "Q8_0" else stored.astype(np.uint8)
    return pack_legacy(dataclasses.replace(grid.fit, q=q), grid.name)


def _stored(v: np.ndarray) -> np.ndarray:
    """A float32 block parameter as the block stores it (fp16), read back as the runtime reads it."""
    return fp16_values(fp16_bytes(v))


__all__ = ["CODE_RANGE", "QK", "QK_K", "CodeGrid", "fit_grid", "pack_codes"]
