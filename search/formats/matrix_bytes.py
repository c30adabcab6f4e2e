"""Bytes of one weight matrix as a recipe entry stores it: a GGUF block format, or devicefit's own group-wise one.

GGUF stores each row of n weights as ceil(n / block) blocks of the type's size (llama.cpp pads nothing: a
row that its block does not divide is given another type by the quantizer, see filetypes.py; the ceiling
only keeps a width-pruned shape from failing). Everything else follows ``search.memory``'s storage formula.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from search.formats.ggml_types import ggml_type

if TYPE_CHECKING:
    from search.recipe import LayerCompression


def gguf_rows_bytes(rows: int, row_length: int, fmt: str) -> int:
    t = ggml_type(fmt)
    return rows * -(-row_length // t.block_size) * t.type_size


def matrix_bytes(rows: int, row_length: int, setting: LayerCompression) -> int:
    """Bytes of a [rows, row_length] weight (no bias) stored per `setting` (its format, else bits/groups)."""
    if setting.format is not None:
        return gguf_rows_bytes(rows, row_length, setting.format)
    from search.memory import layer_weight_bytes

    return layer_weight_bytes(row_length, rows, False, setting)


def bits_per_weight(rows: int, row_length: int, setting: LayerCompression) -> float:
    return 8.0 * matrix_bytes(rows, row_length, setting) / (rows * row_length)
