"""Which GGUF type a group of layers gets for a bits choice, and which widths keep rows whole blocks.

llama.cpp stores each weight row as whole blocks (32 weights; 256 for K-quants), so a type fits a layer
only when its row length (in_features, after width pruning) is a multiple of the block. For a bits
choice the K-quant is preferred (better quality per bit); where its blocks do not fit, the legacy type
of the same bits, else the next larger bits that fit (never fewer bits than asked).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from search.formats.ggml_types import GGML_TYPES
from search.recipe import Width

if TYPE_CHECKING:
    from search.hw_profiles.runtimes import RuntimeCaps
    from search.space.graph import ModelGraph

# per bits, the GGUF types in order of preference
TYPES_BY_BITS: dict[int, tuple[str, ...]] = {
    16: ("F16", "BF16"), 8: ("Q8_0",), 6: ("Q6_K",), 5: ("Q5_K", "Q5_0", "Q5_1"), 4: ("Q4_K", "Q4_0", "Q4_1"),
    3: ("Q3_K",), 2: ("Q2_K",),
}
SMALLEST_BLOCK = 32


def _fits(type_name: str, rows: list[int]) -> bool:
    block = GGML_TYPES[type_name].block_size
    return all(n % block == 0 for n in rows)


def _pick(bits: int, rows: list[int], caps: RuntimeCaps) -> str:
    allowed = set(caps.weight_formats or ())
    for b in sorted(b for b in TYPES_BY_BITS if b >= bits):
        for name in TYPES_BY_BITS[b]:
            if name in allowed and _fits(name, rows):
                return name
    return "F16"  # every row length fits a float type


def gguf_format(graph: ModelGraph, layer_names: tuple[str, ...], width: Width, bits: int,
                caps: RuntimeCaps) -> str:
    """The GGUF type of a group of layers for a bits choice, given the width pruning applied to them."""
    by_name = {layer.name: layer for layer in graph.layers}
    rows = [graph.sliced_shape(by_name[n], width)[0] for n in layer_names if n in by_name]
    return _pick(bits, rows, caps)


def embedding_format(graph: ModelGraph, bits: int, caps: RuntimeCaps) -> str:
    """The GGUF type of the token embeddings (rows of hidden_size) for a bits choice."""
    return _pick(bits, [graph.hidden_size], caps)


def runnable_width(graph: ModelGraph, part: str, fraction: float) -> bool:
    """Whether pruning ``part`` ("mlp" or "heads") to ``fraction`` leaves rows of whole 32-weight blocks."""
    if fraction >= 1:
        return True
    if part == "mlp":
        return graph.kept_neurons(fraction) % SMALLEST_BLOCK == 0
    return graph.kept_heads(fraction) * graph.head_dim % SMALLEST_BLOCK == 0
