"""VariantCache: compressed layers kept per (layer, setting), so a recipe is assembled, not recomputed.

EvoPress (Sieberling et al., 2024) compresses every (layer, compression level) once and
assembles candidates by swapping the stored layers in. A search applies hundreds of
recipes to one model and the same (layer, setting) recurs in most of them, so apply()
(search/compress/compose.py) looks every target layer up here first and only compresses
the misses. What a key must hold is search/compress/variant_keys.py's business.

Rules that keep the cache honest:
- one cache serves one source model (``bind``): the keys name layers, not weights, so a source
  whose tensors changed since (in-place updates bump a tensor's version; ``.to()`` and
  re-assignment move its storage) empties the cache first;
- entries are private: ``store`` keeps its own deep copy and ``get`` hands out a fresh deep
  copy, so whoever receives a module (recovery training, ``.to()``, the dequantized-weight
  cache a forward pass fills) can never change what the next recipe gets. Copying packed
  buffers costs little next to building them (bench/variant_cache.py);
- memory only, bounded in bytes, least recently used first out; one lock, so the threads of
  an in-process executor may share it.
Besides modules it keeps small measurements the same way (width pruning's activation energies:
a dict of tensors).
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch import nn

DEFAULT_MAX_BYTES = 1 << 30


def value_bytes(value: nn.Module | dict[str, torch.Tensor]) -> int:
    """Bytes of a module's parameters and buffers, or of a dict's tensors (shared storages once)."""
    tensors = [*value.parameters(), *value.buffers()] if isinstance(value, nn.Module) else list(value.values())
    seen: set[int] = set()
    total = 0
    for t in tensors:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in seen:
            seen.add(ptr)
            total += t.untyped_storage().nbytes()
    return total


def _tensor_state(model: nn.Module) -> tuple:
    """Changes when any parameter or buffer of the model is modified in place or replaced (microseconds)."""
    # inference tensors keep no version counter (and cannot be modified in place outside inference mode)
    return tuple((-1 if t.is_inference() else t._version, t.data_ptr())
                 for t in (*model.parameters(), *model.buffers()))


class VariantCache:
    """key -> compressed nn.Module (or dict of tensors), at most ``max_bytes`` of tensors, least recently used
    evicted first."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        if max_bytes < 0:
            raise ValueError(f"max_bytes {max_bytes} must be >= 0")
        self.max_bytes = max_bytes
        self.hits = self.misses = self.evictions = 0
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._source: weakref.ref | None = None
        self._source_state: tuple = ()

    def bind(self, model: nn.Module) -> None:
        """Tie the cache to the source model it was filled from (a different model is refused; a changed one
        empties the cache)."""
        state = _tensor_state(model)
        with self._lock:
            bound = self._source() if self._source is not None else None
            if bound is not None and bound is not model:
                raise ValueError("this VariantCache holds layers of another model; use one cache per source model")
            if bound is None or state != self._source_state:
                self._clear()
                self._source, self._source_state = weakref.ref(model), state

    def get(self, key: Hashable) -> Any:
        """A private copy of the stored value, or None (counted as a hit or a miss)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            stored = entry[0]
        return copy.deepcopy(stored)  # outside the lock: stored entries are never mutated

    def store(self, key: Hashable, value: Any) -> None:
        """Keep a copy of ``value`` (the caller keeps using the original); too big for the bound: not kept."""
        size = value_bytes(value)
        if size > self.max_bytes:
            return
        kept = copy.deepcopy(value)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (kept, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= evicted
                self.evictions += 1

    def get_or_build(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The cached value, or ``build()``'s (then stored)."""
        value = self.get(key)
        if value is None:
            value = build()
            self.store(key, value)
        return value

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def stats(self) -> dict[str, Any]:
        return {"entries": len(self._entries), "bytes": self._bytes, "max_bytes": self.max_bytes,
                "hits": self.hits, "misses": self.misses, "evictions": self.evictions}

    def clear(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
