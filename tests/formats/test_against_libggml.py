"""The runtime itself as the oracle: llama.cpp's C dequantizers read devicefit's bytes as devicefit does,
its reference quantizer writes the same legacy bytes, and devicefit's K-quant scale search is at least
as accurate as llama.cpp's (no importance matrix) on a Gaussian weight.

llama-cpp-python is part of the test extra: these tests fail, not skip, without it.
"""

import gguf
import numpy as np
import pytest

from search.formats.codec import dequantize_rows, quantize_rows
from search.formats.libggml import GGML_TYPE_IDS, ggml_dequantize, ggml_quantize
from tests.formats.helpers import FLOATS, KQUANTS, LEGACY, awkward_weight, gaussian, rms


def test_type_ids_are_ggml_enum_values():
    assert all(gguf.GGMLQuantizationType[name].value == value for name, value in GGML_TYPE_IDS.items())


@pytest.mark.parametrize("name", LEGACY + KQUANTS + FLOATS)
@pytest.mark.parametrize("weight", ["gaussian", "awkward"])
def test_llama_cpp_reads_our_bytes_as_we_do(name, weight):
    w = gaussian(16, 1024) if weight == "gaussian" else awkward_weight()
    blocks = quantize_rows(w, name)
    assert np.array_equal(ggml_dequantize(blocks, name).view(np.uint32), dequantize_rows(blocks, name).view(np.uint32))


@pytest.mark.parametrize("name", LEGACY + FLOATS)
def test_legacy_bytes_equal_llama_cpp_quantizer(name):
    w = awkward_weight()
    assert np.array_equal(quantize_rows(w, name), ggml_quantize(w, name))


@pytest.mark.parametrize("name", KQUANTS)
def test_k_quants_at_least_as_accurate_as_llama_cpp(name):
    w = gaussian(64, 1024, seed=11)
    ours = rms(dequantize_rows(quantize_rows(w, name), name), w)
    theirs = rms(ggml_dequantize(ggml_quantize(w, name), name), w)
    assert ours <= 1.01 * theirs, f"{name}: devicefit {ours:.4f} vs llama.cpp {theirs:.4f}"
