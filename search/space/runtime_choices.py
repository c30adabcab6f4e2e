"""Which GGUF types the search chooses between, the type a group of layers really gets, and which widths
keep rows whole blocks.

llama.cpp stores each weight row as whole blocks (32 weights; 256 for K-quants), so a type fits a layer
only when its row length (in_features, after width pruning) is a multiple of the block. Each of the
runtime's types whose bits the space allows is its own choice (Q4_0 and Q4_K are different trade-offs:
4.5 bits per weight either way, a 32-weight scale against 256-weight super-blocks with 6-bit sub-scales
and minimums). Where a chosen type's blocks do not fit a layer, that layer falls back per tensor as
llama.cpp's quantizer does (search.formats.filetypes.FALLBACK: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0,
Q3_K / Q2_K -> Q4_0), so a uniform choice is exactly what ``llama-quantize --pure`` writes; failing that,
to the preferred type of the same or more bits that fits (never fewer bits than chosen).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from search.formats.filetypes import FALLBACK
from search.formats.ggml_types import GGML_TYPES
from search.recipe import Width

if TYPE_CHECKING:
    from search.hw_profiles.runtimes import RuntimeCaps
    from search.space.graph import ModelGraph

# per bits, the GGUF types in order of preference (the first is what a plain bits choice means)
TYPES_BY_BITS: dict[int, tuple[str, ...]] = {
    16: ("F16", "BF16"), 8: ("Q8_0",), 6: ("Q6_K",), 5: ("Q5_K", "Q5_0", "Q5_1"), 4: ("Q4_K", "Q4_0", "Q4_1"),
    3: ("Q3_K",), 2: ("Q2_K",),
}
SMALLEST_BLOCK = 32
# BF16 is F16's twin for the search (same bytes, same latency model); one 16-bit choice is enough
NOT_A_CHOICE = frozenset({"BF16"})


def _fits(type_name: str, rows: list[int]) -> bool:
    block = GGML_TYPES[type_name].block_size
    return all(n % block == 0 for n in rows)


def format_choices(bits: list[int] | tuple[int, ...], caps: RuntimeCaps) -> list[str]:
    """The runtime's types whose bits are among ``bits``, in the order of ``bits`` (each bits' types
    in order of preference): the per-group format choices of a GGUF search space."""
    allowed = set(caps.weight_formats or ()) - NOT_A_CHOICE
    return [name for b in bits for name in TYPES_BY_BITS.get(b, ()) if name in allowed]


def preferred_format(bits: int, caps: RuntimeCaps, rows: list[int] | tuple[int, ...] = ()) -> str:
    """What a plain bits choice means: the runtime's preferred type of those bits that fits the rows
    (Q4_K for 4 bits, Q4_0 where rows are not whole 256-blocks), else of more bits."""
    return _pick(bits, list(rows), caps)


def fitting_format(format_name: str, rows: list[int], caps: RuntimeCaps) -> str:
    """``format_name`` where its blocks fit every row, else llama.cpp's fallback for it, else the
    preferred type of the same or more bits that fits."""
    allowed = caps.weight_formats or ()
    for name in (format_name, FALLBACK.get(format_name)):
        if name in allowed and _fits(name, rows):
            return name
    return _pick(GGML_TYPES[format_name].nominal_bits, rows, caps)


def _pick(bits: int, rows: list[int], caps: RuntimeCaps) -> str:
    allowed = set(caps.weight_formats or ())
    for b in sorted(b for b in TYPES_BY_BITS if b >= bits):
        for name in TYPES_BY_BITS[b]:
            if name in allowed and _fits(name, rows):
                return name
    return "F16"  # every row length fits a float type


def gguf_format(graph: ModelGraph, layer_names: tuple[str, ...], width: Width, format_name: str,
                caps: RuntimeCaps) -> str:
    """The GGUF type a group of layers gets for a chosen type, given the width pruning applied to them."""
    by_name = {layer.name: layer for layer in graph.layers}
    rows = [graph.sliced_shape(by_name[n], width)[0] for n in layer_names if n in by_name]
    return fitting_format(format_name, rows, caps)


def embedding_format(graph: ModelGraph, format_name: str, caps: RuntimeCaps) -> str:
    """The GGUF type of the token embeddings (rows of hidden_size) for a chosen type."""
    return fitting_format(format_name, [graph.hidden_size], caps)


def runnable_width(graph: ModelGraph, part: str, fraction: float) -> bool:
    """Whether pruning ``part`` ("mlp" or "heads") to ``fraction`` leaves rows of whole 32-weight blocks."""
    if fraction >= 1:
        return True
    if part == "mlp":
        return graph.kept_neurons(fraction) % SMALLEST_BLOCK == 0
    return graph.kept_heads(fraction) * graph.head_dim % SMALLEST_BLOCK == 0
