"""Whole tensors to and from GGUF bytes: one entry point per direction for every weight type.

A 2-D weight [rows, cols] (llama.cpp's ne0 = cols, the row length) becomes uint8
[rows, row_bytes], exactly the bytes a GGUF file holds for that tensor; rows are
independent, so a tensor's bytes are its rows' bytes one after another. numpy only:
callers convert from / to torch.
"""

from __future__ import annotations

import numpy as np

from search.formats.blocks_legacy import LAYOUTS as LEGACY_LAYOUTS
from search.formats.blocks_legacy import dequantize_legacy, quantize_legacy
from search.formats.ggml_types import ggml_type
from search.formats.kquants import LAYOUTS as KQUANT_LAYOUTS
from search.formats.kquants import dequantize_kquant, quantize_kquant

BLOCK_LAYOUTS = {**LEGACY_LAYOUTS, **KQUANT_LAYOUTS}
CHUNK_BLOCKS = 4096  # blocks encoded at once (1M weights of a K-quant)


def _bf16_bytes(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns, rounding to nearest even (NaN stays a quiet NaN)."""
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        rounded = np.where(nan, ((bits >> 16) | 0x40).astype(np.uint16), rounded)
    return rounded.view(np.uint8)


def quantize_rows(weight: np.ndarray, name: str) -> np.ndarray:
    """float [rows, cols] -> uint8 [rows, row_bytes] in GGML type `name` (cols a multiple of its block)."""
    t = ggml_type(name)
    w = np.ascontiguousarray(weight, dtype=np.float32)
    rows, cols = w.shape
    row_bytes = t.row_bytes(cols)  # raises RecipeError when cols is not a multiple of the block
    if t.name == "F32":
        return w.view(np.uint8).reshape(rows, row_bytes)
    if t.name == "F16":
        return w.astype("<f2").view(np.uint8).reshape(rows, row_bytes)
    if t.name == "BF16":
        return _bf16_bytes(w).reshape(rows, row_bytes)
    blocks = w.reshape(-1, t.block_size)
    encode = quantize_kquant if t.name in KQUANT_LAYOUTS else quantize_legacy
    # in chunks: the scale search holds several float32 temporaries of its input's size
    parts = [encode(blocks[i:i + CHUNK_BLOCKS], t.name) for i in range(0, len(blocks), CHUNK_BLOCKS)]
    return np.concatenate(parts).reshape(rows, row_bytes)


def dequantize_rows(blocks: np.ndarray, name: str) -> np.ndarray:
    """uint8 [rows, row_bytes] -> float32 [rows, cols]: the weights as llama.cpp reconstructs them."""
    t = ggml_type(name)
    data = np.ascontiguousarray(blocks, dtype=np.uint8)
    rows, row_bytes = data.shape
    if row_bytes % t.type_size:
        raise ValueError(f"{row_bytes} bytes per row is not a whole number of {t.name} blocks ({t.type_size} bytes)")
    cols = row_bytes // t.type_size * t.block_size
    if t.name == "F32":
        return data.view("<f4").astype(np.float32).reshape(rows, cols)
    if t.name == "F16":
        return data.view("<f2").astype(np.float32).reshape(rows, cols)
    if t.name == "BF16":
        return (data.view("<u2").astype(np.uint32) << 16).view(np.float32).reshape(rows, cols)
    decode = dequantize_kquant if t.name in KQUANT_LAYOUTS else dequantize_legacy
    return decode(data.reshape(-1, t.type_size), t.name).reshape(rows, cols)
