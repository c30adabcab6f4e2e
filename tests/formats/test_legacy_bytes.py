"""Q8_0 / Q5_x / Q4_x and the float types: devicefit's bytes are llama.cpp's bytes.

Oracle: the `gguf` package (llama.cpp's own Python port of quantize_row_*_ref and of the
dequantization), so bytes written by devicefit can go into a GGUF file unchanged.
"""

import gguf
import numpy as np
import pytest
from gguf.quants import dequantize, quantize

from search.formats.codec import dequantize_rows, quantize_rows
from tests.formats.helpers import FLOATS, LEGACY, awkward_weight, gaussian


@pytest.mark.parametrize("name", LEGACY + FLOATS)
@pytest.mark.parametrize("weight", ["gaussian", "awkward"])
def test_bytes_equal_the_reference_quantizer(name, weight):
    w = gaussian(64, 512) if weight == "gaussian" else awkward_weight()
    qtype = gguf.GGMLQuantizationType[name]
    ours = quantize_rows(w, name)
    reference = quantize(w, qtype).view(np.uint8).reshape(ours.shape)
    assert ours.dtype == np.uint8
    assert np.array_equal(ours, reference)


@pytest.mark.parametrize("name", LEGACY + FLOATS)
def test_dequantization_equals_the_runtime_bit_for_bit(name):
    w = awkward_weight()
    blocks = quantize_rows(w, name)
    ours = dequantize_rows(blocks, name)
    theirs = dequantize(blocks, gguf.GGMLQuantizationType[name])
    assert ours.dtype == np.float32 and ours.shape == w.shape
    assert np.array_equal(ours.view(np.uint32), theirs.reshape(w.shape).view(np.uint32))


def test_q8_0_rounds_halves_away_from_zero_like_c():
    # 63.5 / 127 of the block maximum: the code is 63.5 -> 64 (C roundf), not 64 by chance of even rounding
    block = np.zeros((1, 32), np.float32)
    block[0, 0], block[0, 1], block[0, 2] = 127.0, 62.5, -62.5
    codes = quantize_rows(block, "Q8_0")[0, 2:].view(np.int8)
    assert codes[:3].tolist() == [127, 63, -63]
