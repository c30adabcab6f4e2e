"""GGML tensor types as llama.cpp stores them in GGUF: block size and bytes per block.

Facts from llama.cpp's ggml-common.h block structs (public source):
- Q4_0: fp16 d + 16 bytes of 4-bit codes per 32 weights = 18 bytes
- Q4_1: fp16 d, fp16 m + 16 bytes = 20; Q5_0: d + 4 bytes high bits + 16 = 22; Q5_1: 24
- Q8_0: fp16 d + 32 int8 = 34
- K-quants work on super-blocks of 256 weights: Q2_K 84 bytes, Q3_K 110, Q4_K 144, Q5_K 176, Q6_K 210
The true bits per weight of a type is 8 * type_size / block_size (Q4_0 = 4.5, Q6_K = 6.5625).
"""

from __future__ import annotations

from dataclasses import dataclass

from search.errors import RecipeError


@dataclass(frozen=True)
class GgmlType:
    name: str
    block_size: int  # weights per block (the row length must be a multiple of it)
    type_size: int  # bytes per block
    nominal_bits: int  # the integer bits of its codes (16 for float types): what recipes call bits
    symmetric: bool  # no per-block minimum / zero point

    @property
    def bits_per_weight(self) -> float:
        return 8.0 * self.type_size / self.block_size

    @property
    def quantized(self) -> bool:
        return self.nominal_bits < 16

    def row_bytes(self, n: int) -> int:
        """Bytes of one row of n weights (n must be a multiple of the block size)."""
        if n % self.block_size:
            raise RecipeError(f"{self.name} needs rows that are a multiple of {self.block_size} weights, not {n}")
        return n // self.block_size * self.type_size


GGML_TYPES: dict[str, GgmlType] = {t.name: t for t in (
    GgmlType("F32", 1, 4, 32, True),
    GgmlType("F16", 1, 2, 16, True),
    GgmlType("BF16", 1, 2, 16, True),
    GgmlType("Q8_0", 32, 34, 8, True),
    GgmlType("Q5_1", 32, 24, 5, False),
    GgmlType("Q5_0", 32, 22, 5, True),
    GgmlType("Q4_1", 32, 20, 4, False),
    GgmlType("Q4_0", 32, 18, 4, True),
    GgmlType("Q6_K", 256, 210, 6, True),
    GgmlType("Q5_K", 256, 176, 5, False),
    GgmlType("Q4_K", 256, 144, 4, False),
    GgmlType("Q3_K", 256, 110, 3, True),
    GgmlType("Q2_K", 256, 84, 2, False),
)}

WEIGHT_TYPES = tuple(n for n in GGML_TYPES if n != "F32")  # what a recipe may name for a weight


def ggml_type(name: str) -> GgmlType:
    """The type called ``name`` (case-insensitive), or a RecipeError listing the known ones."""
    key = name.upper()
    if key not in GGML_TYPES:
        raise RecipeError(f"unknown tensor format {name!r}; use one of {', '.join(WEIGHT_TYPES)}")
    return GGML_TYPES[key]
