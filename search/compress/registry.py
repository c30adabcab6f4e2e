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


def load_transforms() -> None:
    """Import every module of search.compress.transforms: each registers its transform on import.
    Discovered, not listed, so the registry depends on no method and a new method is one new file."""
    import importlib
    import pkgutil

    package = importlib.import_module(f"{__package__}.transforms")
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")


def transform(name: str) -> Callable[..., Any]:
    """The registered transform called `name` (after the methods are loaded)."""
    if name not in MODEL_TRANSFORMS and name not in LAYER_TRANSFORMS:
        load_transforms()
    if name in MODEL_TRANSFORMS:
        return MODEL_TRANSFORMS[name]
    if name in LAYER_TRANSFORMS:
        return LAYER_TRANSFORMS[name]
    raise KeyError(f"no compression transform named {name!r}; known: {', '.join(ORDER)}")
