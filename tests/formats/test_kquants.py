"""K-quants: devicefit chooses its own scales, but the bytes are valid llama.cpp blocks and its
dequantization is the runtime's, bit for bit (oracle: the `gguf` package's dequantizers)."""

import gguf
import numpy as np
import pytest
from gguf.quants import dequantize

from search.formats.codec import dequantize_rows, quantize_rows
from search.formats.kquants import LAYOUTS, dequantize_kquant
from tests.formats.helpers import KQUANTS, awkward_weight, gaussian, rms


@pytest.mark.parametrize("name", KQUANTS)
@pytest.mark.parametrize("weight", ["gaussian", "awkward"])
def test_gguf_reads_our_bytes_as_we_do(name, weight):
    w = gaussian(32, 1024) if weight == "gaussian" else awkward_weight()
    blocks = quantize_rows(w, name)
    ours = dequantize_rows(blocks, name)
    theirs = dequantize(blocks, gguf.GGMLQuantizationType[name]).reshape(w.shape)
    assert np.isfinite(ours).all()
    assert np.array_equal(ours.view(np.uint32), theirs.view(np.uint32))


@pytest.mark.parametrize("name", KQUANTS)
def test_decoder_reads_arbitrary_bytes_like_the_runtime(name):
    """Random bytes are legal blocks too (every field is a raw integer): the decoder must agree on all
    of them, not only on what our encoder happens to produce. fp16 fields are kept finite."""
    rng = np.random.default_rng(3)
    layout = LAYOUTS[name]
    size = sum(n for _, n in layout)
    blocks = rng.integers(0, 256, (64, size), dtype=np.uint8)
    start = 0
    for field, n in layout:
        if field in ("d", "dmin"):
            blocks[:, start:start + 2] = np.frombuffer(
                rng.uniform(-2, 2, 64).astype("<f2").tobytes(), np.uint8).reshape(64, 2)
        start += n
    ours = dequantize_kquant(blocks, name)
    theirs = dequantize(blocks, gguf.GGMLQuantizationType[name])
    assert np.array_equal(ours.view(np.uint32), theirs.view(np.uint32))


def test_error_decreases_with_bits_on_a_gaussian_weight():
    w = gaussian()
    errors = [rms(dequantize_rows(quantize_rows(w, name), name), w) for name in KQUANTS]
    assert errors == sorted(errors)  # Q6_K < Q5_K < Q4_K < Q3_K < Q2_K
    assert all(later > 1.5 * earlier for earlier, later in zip(errors, errors[1:], strict=False))
    assert errors[-1] < 0.35  # Q2_K still carries the signal (a zero weight would give 1.0)


@pytest.mark.parametrize(("kquant", "legacy"), [("Q4_K", "Q4_0"), ("Q5_K", "Q5_0")])
def test_scale_search_beats_the_legacy_type_of_the_same_size(kquant, legacy):
    """Q4_K and Q4_0 both cost 4.5 bits per weight (Q5_K and Q5_0: 5.5): the per-sub-block scales and
    minimums are only worth their bytes if the fitted K-quant is more accurate."""
    w = gaussian()
    err = {n: rms(dequantize_rows(quantize_rows(w, n), n), w) for n in (kquant, legacy)}
    assert err[kquant] < 0.9 * err[legacy]


@pytest.mark.parametrize("name", KQUANTS)
def test_zero_weights_stay_zero_and_constant_blocks_are_close(name):
    w = awkward_weight()
    back = dequantize_rows(quantize_rows(w, name), name)
    assert np.array_equal(back[0], np.zeros_like(back[0]))
    assert np.array_equal(back[6, :256], np.zeros(256, np.float32))
    assert np.abs(back[1] - 0.75).max() < 0.75 * 0.05
