"""Shared data for the format tests."""

import numpy as np

LEGACY = ["Q8_0", "Q5_1", "Q5_0", "Q4_1", "Q4_0"]
KQUANTS = ["Q6_K", "Q5_K", "Q4_K", "Q3_K", "Q2_K"]  # most bits first
FLOATS = ["F16", "BF16"]


def gaussian(rows: int = 256, cols: int = 1024, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, cols)).astype(np.float32)


def awkward_weight() -> np.ndarray:
    """[12, 512] float32: Gaussian rows of different scales plus the edge cases a quantizer trips on."""
    rng = np.random.default_rng(7)
    w = (rng.standard_normal((12, 512)) * rng.uniform(0.01, 3.0, (12, 1))).astype(np.float32)
    w[0] = 0.0  # all-zero blocks
    w[1] = 0.75  # constant positive
    w[2] = -np.abs(w[2])  # all negative
    w[3] = np.abs(w[3]) + 1.0  # all positive, away from 0
    w[4, ::7] *= 40.0  # outliers
    w[5] *= 1e-4  # tiny (fp16 subnormal scales)
    w[6, :256] = 0.0  # one zero super-block next to a normal one
    w[7, 3] = np.float32(0.49999997)  # a float32 rounding edge (roundf vs floor(x + 0.5))
    w[7, 40] = np.float32(-2.5) * np.abs(w[7, 32:64]).max() / 127  # a code exactly at a half for Q8_0
    return w


def rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a.astype(np.float64) - b) ** 2)))
