"""Block layouts: field sizes add up to the type table and to llama.cpp's sizes; bits per weight follow."""

import gguf
import numpy as np
import pytest

from search.errors import RecipeError
from search.formats.codec import BLOCK_LAYOUTS, quantize_rows
from search.formats.ggml_types import GGML_TYPES
from tests.formats.helpers import KQUANTS, LEGACY

# bits per weight from the block structs: (fp16 scales + packed codes + sub-block scales) / weights
EXPECTED_BPW = {"Q8_0": (16 + 32 * 8) / 32, "Q5_1": (32 + 32 + 32 * 4) / 32, "Q5_0": (16 + 32 + 32 * 4) / 32,
                "Q4_1": (32 + 32 * 4) / 32, "Q4_0": (16 + 32 * 4) / 32,
                "Q6_K": (256 * 6 + 16 * 8 + 16) / 256, "Q5_K": (256 * 5 + 8 * 12 + 32) / 256,
                "Q4_K": (256 * 4 + 8 * 12 + 32) / 256, "Q3_K": (256 * 3 + 16 * 6 + 16) / 256,
                "Q2_K": (256 * 2 + 16 * 8 + 32) / 256}


@pytest.mark.parametrize("name", LEGACY + KQUANTS)
def test_layout_matches_type_table_and_llama_cpp(name):
    fields = BLOCK_LAYOUTS[name]
    t = GGML_TYPES[name]
    block_size, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[name]]
    assert sum(n for _, n in fields) == t.type_size == type_size
    assert t.block_size == block_size
    assert t.bits_per_weight == pytest.approx(8 * sum(n for _, n in fields) / block_size)
    assert t.bits_per_weight == pytest.approx(EXPECTED_BPW[name])


@pytest.mark.parametrize("name", LEGACY + KQUANTS + ["F16", "BF16"])
def test_row_bytes_are_what_quantize_writes(name):
    w = np.ones((3, 512), np.float32)
    assert quantize_rows(w, name).shape == (3, GGML_TYPES[name].row_bytes(512))


def test_row_not_a_multiple_of_the_block_is_refused():
    with pytest.raises(RecipeError, match="multiple of 256"):
        quantize_rows(np.ones((2, 288), np.float32), "Q4_K")
    with pytest.raises(RecipeError, match="multiple of 32"):
        quantize_rows(np.ones((2, 48), np.float32), "Q4_0")
