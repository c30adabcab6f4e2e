"""Compression transforms and apply(model, recipe) -> compressed model.

Importing this package does not import torch; apply() loads the machinery on
first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search.recipe import CompressionConfig


def apply(model: Any, recipe: CompressionConfig, calibration: Any = None, **options: Any) -> Any:
    """A NEW compressed model in bfloat16 (the input is untouched).

    calibration: LongTensor [n, seq] of token ids for Wanda scores and width
    importance; None ranks by weight magnitude. See search.compress.compose.apply.
    """
    from search.compress.compose import apply as _apply

    return _apply(model, recipe, calibration, **options)


__all__ = ["apply"]
