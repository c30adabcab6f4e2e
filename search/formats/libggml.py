"""llama.cpp's own C quantizers and dequantizers (libggml-base from llama-cpp-python), through ctypes.

The oracle of last resort for search.formats: what the runtime itself reads from a block of
bytes, and what its reference quantizer (no importance matrix) writes. Used by the tests and
bench/gguf_formats.py; needs the llamacpp extra (llama-cpp-python ships the library).
"""

from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path

import numpy as np

from search.errors import DeviceFitError
from search.formats.ggml_types import ggml_type

_FLOAT_P = ctypes.POINTER(ctypes.c_float)
# enum ggml_type values (ggml.h), as GGUF files store them
GGML_TYPE_IDS = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "Q2_K": 10,
                 "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "BF16": 30}


@cache
def _library() -> ctypes.CDLL:
    try:
        import llama_cpp
    except ImportError as exc:
        raise DeviceFitError("llama.cpp's library is not installed: pip install 'devicefit[llamacpp]'") from exc
    lib = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = (ctypes.c_int, _FLOAT_P, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                        ctypes.c_int64, _FLOAT_P)
    return lib


def _dequantizer(name: str):
    stem = name.lower()
    symbol = {"f16": "ggml_fp16_to_fp32_row", "bf16": "ggml_bf16_to_fp32_row"}.get(
        stem, "dequantize_row_" + (stem[:-1] + "K" if stem.endswith("_k") else stem))
    fn = getattr(_library(), symbol)
    fn.restype = None
    fn.argtypes = (ctypes.c_void_p, _FLOAT_P, ctypes.c_int64)
    return fn


def ggml_dequantize(blocks: np.ndarray, name: str) -> np.ndarray:
    """uint8 [rows, row_bytes] -> float32 [rows, cols], by llama.cpp's C code."""
    t = ggml_type(name)
    data = np.ascontiguousarray(blocks, dtype=np.uint8)
    out = np.zeros((data.shape[0], data.shape[1] // t.type_size * t.block_size), np.float32)
    _dequantizer(t.name)(data.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(_FLOAT_P), out.size)
    return out


def ggml_quantize(weight: np.ndarray, name: str) -> np.ndarray:
    """float32 [rows, cols] -> uint8 [rows, row_bytes] by llama.cpp's quantizer (no importance matrix)."""
    t = ggml_type(name)
    w = np.ascontiguousarray(weight, dtype=np.float32)
    rows, cols = w.shape
    out = np.zeros((rows, t.row_bytes(cols)), np.uint8)
    written = _library().ggml_quantize_chunk(GGML_TYPE_IDS[t.name], w.ctypes.data_as(_FLOAT_P),
                                             out.ctypes.data_as(ctypes.c_void_p), 0, rows, cols,
                                             ctypes.cast(0, _FLOAT_P))
    if written != out.size:
        raise DeviceFitError(f"ggml_quantize_chunk wrote {written} bytes for {t.name}, expected {out.size}")
    return out
