"""A GGUF type as a code grid: the encoder's own codes pack to the codec's bytes, and any codes in range
pack to blocks that llama.cpp (the `gguf` package) dequantizes to exactly the grid's values."""

import gguf
import numpy as np
import pytest
from gguf.quants import dequantize

from search.formats.code_grid import CODE_RANGE, fit_grid, pack_codes
from search.formats.codec import dequantize_rows, quantize_rows
from search.formats.ggml_types import ggml_type
from tests.formats.helpers import KQUANTS, LEGACY, awkward_weight, gaussian

TYPES = LEGACY + KQUANTS


def _blocks(w: np.ndarray, name: str) -> np.ndarray:
    return w.reshape(-1, ggml_type(name).block_size)


@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize("weight", ["gaussian", "awkward"])
def test_encoder_codes_pack_to_the_codec_bytes(name, weight):
    w = gaussian(16, 512) if weight == "gaussian" else awkward_weight()
    grid = fit_grid(_blocks(w, name), name)
    assert grid.codes.min() >= grid.qmin and grid.codes.max() <= grid.qmax
    assert np.array_equal(pack_codes(grid, grid.codes).reshape(w.shape[0], -1), quantize_rows(w, name))


@pytest.mark.parametrize("name", TYPES)
def test_any_codes_in_range_dequantize_to_the_grid_values_bit_for_bit(name):
    w = awkward_weight()
    grid = fit_grid(_blocks(w, name), name)
    codes = np.random.default_rng(3).integers(grid.qmin, grid.qmax + 1, grid.scale.shape)
    codes[:, :2] = [grid.qmin, grid.qmax]  # both ends of the range
    blocks = pack_codes(grid, codes).reshape(w.shape[0], -1)
    values = grid.values(codes).reshape(w.shape)
    ours = dequantize_rows(blocks, name)
    theirs = dequantize(blocks, gguf.GGMLQuantizationType[name]).reshape(w.shape)
    assert np.array_equal(ours, values) and np.array_equal(theirs, values)


@pytest.mark.parametrize("name", ["Q8_0", "Q4_0", "Q5_1", "Q6_K", "Q4_K", "Q3_K", "Q2_K"])
def test_nearest_is_the_closest_code_on_the_grid(name):
    w = gaussian(4, 512, seed=5)
    grid = fit_grid(_blocks(w, name), name)
    x = _blocks(w + np.random.default_rng(1).normal(0, 0.3, w.shape).astype(np.float32), name)
    chosen = np.abs(grid.values(grid.nearest(x)) - x)
    best = np.min([np.abs(grid.values(np.full_like(grid.codes, q)) - x)
                   for q in range(grid.qmin, grid.qmax + 1)], axis=0)
    assert np.allclose(chosen, best, rtol=1e-5, atol=1e-6)


def test_codes_outside_the_range_are_refused():
    grid = fit_grid(_blocks(gaussian(1, 256), "Q4_K"), "Q4_K")
    with pytest.raises(ValueError, match=r"\[0, 15\]"):
        pack_codes(grid, np.full(grid.scale.shape, 16))
    assert CODE_RANGE["Q8_0"] == (-127, 127)  # -128 fits int8 but x86 kernels read |q| with a sign trick
