"""Measured matrix-product costs of llama.cpp, per GGUF tensor type (the ``gguf`` part of a measured profile).

llama.cpp multiplies each weight in its stored type (it unpacks blocks inside the dot product),
so one number per (type, rows) says what a weight costs: ns per weight per matrix product of
``rows`` input rows, timed on models small enough to stay in the CPU caches (warm). A model far
larger (cold) streams every weight from memory once per product: one-row products (decode) have
their own cold cost per type; products of many rows pay the warm cost plus a cost per stored byte
(one number per row count, shared by the types). A model in between is interpolated in log of its
linear weight bytes, row counts between the measured ones linearly in rows. A one-row product also pays a
fixed cost per output (one dot-product call each), which short rows feel most.
``search.hw_profiles.llamacpp_profile`` fits the tables.
"""

from __future__ import annotations

import bisect
import math

from pydantic import BaseModel, ConfigDict, Field

# what an unformatted layer is in a GGUF export: the writer keeps a bfloat16 model's dense weights BF16
DENSE_TYPE = "BF16"


class GgufTables(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    runtime: str = Field(description="the llama.cpp build timed, e.g. 'llama-cpp-python 0.3.36'")
    ns_per_weight: dict[str, dict[int, float]] = Field(
        description="GGUF type -> input rows -> ns per weight per matrix product (1 row: weights in the caches)")
    cold_ns_per_weight: dict[str, float] = Field(
        description="GGUF type -> ns per weight of one-row products when the weights stream from memory")
    cold_ns_per_byte: dict[int, float] = Field(
        default_factory=dict, description="input rows (> 1) -> extra ns per stored weight byte of a product "
                                          "whose weights stream from memory (a model beyond the caches)")
    ns_per_one_row_output: float = Field(
        0.0, ge=0, description="ns per output of a one-row product on top of its weights: llama.cpp makes one "
                               "dot-product call per output, whatever the row's length (0 in older profiles)")
    warm_bytes: int = Field(gt=0, description="models whose linear weights fit in this many bytes run warm")
    cold_bytes: int = Field(gt=0, description="models beyond this many bytes of linear weights run cold")

    def type_for(self, fmt: str | None, bits: int, rows: int = 1, weight_set_bytes: float = 0.0) -> str:
        """The table's type for a layer stored as `fmt` (a GGUF type) or, without one, as plain `bits`: a
        16-bit layer is what the GGUF writer writes (BF16); fewer bits need a type holding at least that
        many, and llama.cpp's fastest such type is taken (so fewer bits are never slower)."""
        from search.formats.ggml_types import GGML_TYPES

        if fmt in self.ns_per_weight:
            return fmt
        if bits >= 16 and DENSE_TYPE in self.ns_per_weight:
            return DENSE_TYPE
        holding = [t for t in self.ns_per_weight if t in GGML_TYPES and GGML_TYPES[t].nominal_bits >= bits]
        return min(holding or self.ns_per_weight, key=lambda t: self.ns(t, rows, weight_set_bytes))

    def warm_share(self, weight_set_bytes: float) -> float:
        """1 for a model inside the caches, 0 beyond cold_bytes, linear in log bytes between."""
        if weight_set_bytes <= self.warm_bytes:
            return 1.0
        if weight_set_bytes >= self.cold_bytes:
            return 0.0
        return 1.0 - math.log(weight_set_bytes / self.warm_bytes) / math.log(self.cold_bytes / self.warm_bytes)

    def ns(self, gtype: str, rows: int, weight_set_bytes: float) -> float:
        """ns per weight of one matrix product of `rows` rows in type `gtype`, in a model whose linear
        weights take `weight_set_bytes`."""
        from search.formats.ggml_types import GGML_TYPES

        warm = _interp_rows(self.ns_per_weight[gtype], rows)
        cold_share = 1.0 - self.warm_share(weight_set_bytes)
        if rows <= 1:
            return warm + cold_share * (self.cold_ns_per_weight.get(gtype, warm) - warm)
        if not self.cold_ns_per_byte or gtype not in GGML_TYPES:
            return warm
        per_byte = _interp_rows(self.cold_ns_per_byte, rows)
        return warm + cold_share * per_byte * GGML_TYPES[gtype].bits_per_weight / 8


def _interp_rows(table: dict[int, float], rows: int) -> float:
    """Per-weight cost of a product at `rows`, linear in rows between measured row counts (each row is
    another dot product, so a product's cost is affine in its rows; interpolating in log(rows) priced a
    128-row encoder pass as if it had 181 rows); beyond the last, proportional to rows."""
    keys = sorted(table)
    if rows <= keys[0]:
        return table[keys[0]]
    if rows >= keys[-1]:
        return table[keys[-1]] * rows / keys[-1]
    i = bisect.bisect_right(keys, rows)
    x0, x1 = keys[i - 1], keys[i]
    t = (rows - x0) / (x1 - x0)
    return table[x0] * (1 - t) + table[x1] * t
