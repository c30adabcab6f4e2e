"""Exact bytes of a compressed model, from the graph and the recipe alone (no torch).

The storage plan of a linear layer (which tensors it keeps, their shapes and
dtypes) is defined here, once: the memory figures sum it, and
``search.compress`` uses it to rebuild the module structure of an export.
The compressed modules produce their tensors from real data independently;
tests check the two agree byte for byte (docs/recipes.md lists the formulas).

Storage rules:
- every unquantized tensor (weights, biases, embeddings, norms) is bfloat16: 2 bytes;
- b-bit codes are one little-endian bitstream: ceil(n * b / 8) bytes for n codes;
- scales are float16, one per group; zero points uint8, one per group (asymmetric only);
- unstructured / 2:4 sparsity keeps a bitmask (1 bit per weight) plus the packed
  kept values when that is smaller than storing every value (zeros included);
- channel sparsity stores only the kept output rows plus a 1-bit-per-row mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from search.recipe import LayerCompression, SparsityPattern

if TYPE_CHECKING:
    from search.recipe import CompressionConfig
    from search.space.graph import ModelGraph

DTYPE_BYTES = {"uint8": 1, "float16": 2, "bfloat16": 2}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str  # uint8 | float16 | bfloat16

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPE_BYTES[self.dtype]


def pruned_per_row(in_features: int, setting: LayerCompression) -> int:
    """Weights zeroed in every output row by unstructured or 2:4 sparsity."""
    if setting.sparsity == 0 or setting.sparsity_pattern == SparsityPattern.CHANNEL:
        return 0
    if setting.sparsity_pattern == SparsityPattern.TWO_FOUR:
        # 2 of every full group of 4; a trailing partial group of m weights loses floor(m / 2)
        return 2 * (in_features // 4) + (in_features % 4) // 2
    return int(round(setting.sparsity * in_features))


def pruned_rows(out_features: int, setting: LayerCompression) -> int:
    """Output rows removed by channel sparsity (at least one row always stays)."""
    if setting.sparsity == 0 or setting.sparsity_pattern != SparsityPattern.CHANNEL:
        return 0
    return min(int(round(setting.sparsity * out_features)), out_features - 1)


def num_groups(in_features: int, group_size: int | None) -> int:
    return 1 if group_size is None else math.ceil(in_features / group_size)


@dataclass(frozen=True)
class StoragePlan:
    """How one (non-factorised) linear layer is stored.

    fmt: "plain" (an ordinary bf16 nn.Linear), "dense" (every value of the stored
    rows), "bitmask" (element mask + kept values) or "rows" (kept rows + row mask).
    """

    in_features: int
    out_features: int
    bias: bool
    bits: int
    group_size: int | None
    symmetric: bool
    fmt: str
    rows: int  # stored output rows
    values: int  # stored values (codes or bf16 numbers)

    @property
    def quantized(self) -> bool:
        return self.bits < 16

    @property
    def groups(self) -> int:
        return num_groups(self.in_features, self.group_size)

    def tensors(self) -> list[TensorSpec]:
        specs: list[TensorSpec] = []
        if self.fmt == "plain":
            specs.append(TensorSpec("weight", (self.out_features, self.in_features), "bfloat16"))
        elif self.quantized:
            specs.append(TensorSpec("qweight", (packed_bytes(self.values, self.bits),), "uint8"))
            specs.append(TensorSpec("scales", (self.rows, self.groups), "float16"))
            if not self.symmetric:
                specs.append(TensorSpec("zeros", (self.rows, self.groups), "uint8"))
        else:
            shape = (self.rows, self.in_features) if self.fmt in ("dense", "rows") else (self.values,)
            specs.append(TensorSpec("values", shape, "bfloat16"))
        if self.fmt == "bitmask":
            specs.append(TensorSpec("mask", (packed_bytes(self.rows * self.in_features, 1),), "uint8"))
        if self.fmt == "rows":
            specs.append(TensorSpec("row_mask", (packed_bytes(self.out_features, 1),), "uint8"))
        if self.bias:
            specs.append(TensorSpec("bias", (self.out_features,), "bfloat16"))
        return specs

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors())


def packed_bytes(n: int, bits: int) -> int:
    """Bytes of a bitstream holding n codes of `bits` bits each."""
    return (n * bits + 7) // 8


def _value_bytes(n: int, bits: int) -> int:
    return packed_bytes(n, bits) if bits < 16 else 2 * n


def plan_storage(in_features: int, out_features: int, bias: bool, setting: LayerCompression) -> StoragePlan:
    """Storage of one linear layer (low-rank is handled by layer_plans)."""
    common = dict(in_features=in_features, out_features=out_features, bias=bias, bits=setting.bits,
                  group_size=setting.group_size, symmetric=setting.symmetric)
    dense_values = out_features * in_features
    removed_rows = pruned_rows(out_features, setting)
    if removed_rows:
        rows = out_features - removed_rows
        return StoragePlan(**common, fmt="rows", rows=rows, values=rows * in_features)
    zeros = pruned_per_row(in_features, setting) * out_features
    if zeros:
        kept = dense_values - zeros
        masked = packed_bytes(dense_values, 1) + _value_bytes(kept, setting.bits)
        if masked < _value_bytes(dense_values, setting.bits):
            return StoragePlan(**common, fmt="bitmask", rows=out_features, values=kept)
    fmt = "dense" if setting.quantized or zeros else "plain"
    return StoragePlan(**common, fmt=fmt, rows=out_features, values=dense_values)


def layer_plans(in_features: int, out_features: int, bias: bool,
                setting: LayerCompression) -> dict[str, StoragePlan]:
    """Storage of a layer: {"": plan} or, when factorised, {"a": x->r, "b": r->y (with the bias)}."""
    rank = setting.rank_for(in_features, out_features)
    if rank is None:
        return {"": plan_storage(in_features, out_features, bias, setting)}
    factor = setting.model_copy(update={"rank": None})
    return {"a": plan_storage(in_features, rank, False, factor),
            "b": plan_storage(rank, out_features, bias, factor)}


def layer_weight_bytes(in_f: int, out_f: int, bias: bool, setting: LayerCompression) -> int:
    """Exact bytes of one compressed linear layer (weights, scales, zero points, masks, factors, bias)."""
    return sum(plan.nbytes for plan in layer_plans(in_f, out_f, bias, setting).values())


@dataclass(frozen=True)
class MemoryReport:
    total_bytes: int
    layers: dict[str, int]  # compressible layer name -> bytes
    other_bytes: int  # embeddings, norms and other 16-bit parameters of the kept blocks


def memory_report(graph: ModelGraph, recipe: CompressionConfig) -> MemoryReport:
    """Exact bytes of the model that apply(model, recipe) builds; a tied lm_head is counted once (as the embedding)."""
    resolved = recipe.resolve(graph)
    layers: dict[str, int] = {}
    for layer in recipe.kept_layers(graph):
        if layer.tied:
            continue
        in_f, out_f = graph.sliced_shape(layer, recipe.width)
        layers[layer.name] = layer_weight_bytes(in_f, out_f, layer.bias, resolved[layer.name])
    keep = None if recipe.keep_blocks is None else set(recipe.keep_blocks)
    other = sum(2 * p.numel for p in graph.others if p.block is None or keep is None or p.block in keep)
    return MemoryReport(total_bytes=sum(layers.values()) + other, layers=layers, other_bytes=other)


def model_bytes(model: Any) -> int:
    """Bytes of every tensor in a built model's state_dict, shared storage counted once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for tensor in model.state_dict().values():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if key in seen:
            continue
        seen.add(key)
        total += tensor.numel() * tensor.element_size()
    return total
