"""Compression transforms registered by name, and the order apply() composes them in.

Model transforms change the architecture (which blocks, how wide); layer
transforms turn one linear layer's WorkLayer into the next form. ORDER is the
one documented composition order (docs/recipes.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ORDER = ("depth", "width", "lowrank", "sparsity", "quantize")

MODEL_TRANSFORMS: dict[str, Callable[..., Any]] = {}
LAYER_TRANSFORMS: dict[str, Callable[..., Any]] = {}


def model_transform(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        MODEL_TRANSFORMS[name] = fn
        return fn
    return register


def layer_transform(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        LAYER_TRANSFORMS[name] = fn
        return fn
    return register


def transform(name: str) -> Callable[..., Any]:
    """The registered transform called `name` (after the built-in ones are loaded)."""
    import search.compress.depth  # noqa: F401  - registration happens on import
    import search.compress.lowrank  # noqa: F401
    import search.compress.quantize_layer  # noqa: F401
    import search.compress.sparsity  # noqa: F401
    import search.compress.width  # noqa: F401

    if name in MODEL_TRANSFORMS:
        return MODEL_TRANSFORMS[name]
    if name in LAYER_TRANSFORMS:
        return LAYER_TRANSFORMS[name]
    raise KeyError(f"no compression transform named {name!r}; known: {', '.join(ORDER)}")
