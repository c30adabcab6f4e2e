"""Encoded GGUF blocks of recently quantized weights, keyed by the weight's content and the type.

A search applies many recipes to one model, and the same (layer weight, format) pair recurs in
most of them; encoding a K-quant costs about 0.5 us per weight (the scale search), decoding 0.02.
The bytes depend only on the float32 weight and the type, so they are reused by content hash
(bounded in total bytes, least recently used first out).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np

CACHE_BYTES = 256 * 1024 * 1024
_cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
_cached_bytes = 0
_lock = threading.Lock()  # in-process executors may apply recipes from several threads


def encoded_rows(weight: np.ndarray, ggml_type: str) -> np.ndarray:
    """quantize_rows(weight, ggml_type), from the cache when this exact weight was encoded before (read-only)."""
    from search.formats.codec import quantize_rows

    global _cached_bytes
    w = np.ascontiguousarray(weight, dtype=np.float32)
    key = hashlib.blake2b(w.tobytes(), digest_size=20).digest() + f"{w.shape}{ggml_type}".encode()
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    blocks = quantize_rows(w, ggml_type)  # outside the lock: encodings of different layers run in parallel
    blocks.setflags(write=False)
    with _lock:
        if key not in _cache:
            _cache[key] = blocks
            _cached_bytes += blocks.nbytes
        while _cached_bytes > CACHE_BYTES and len(_cache) > 1:
            _, old = _cache.popitem(last=False)
            _cached_bytes -= old.nbytes
    return blocks
