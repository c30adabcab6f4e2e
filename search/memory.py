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
- channel sparsity stores only the kept output rows plus a 1-bit-per-row mask;
- a layer whose recipe entry names a GGUF format (Q4_K, Q8_0, F16, ...) stores its rows as that
  type's blocks (row_bytes per output row, search.formats.ggml_types) plus a bf16 bias; BF16 is a
  plain bf16 layer. Such a layer has no sparsity or low rank (llama.cpp has neither) and needs
  in_features to be a multiple of the type's block size (format_problem);
- the token embedding table follows recipe.embedding the same way (a GGUF format, b-bit groups, or
  bf16); a tied output head shares it and is counted once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from search.errors import RecipeError
from search.formats.ggml_types import ggml_type
from search.recipe import LayerCompression, SparsityPattern

if TYPE_CHECKING:
    from search.recipe import CompressionConfig
    from search.space.graph import ModelGraph, OtherParam

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
    rows), "bitmask" (element mask + kept values), "rows" (kept rows + row mask) or
    "gguf" (GGUF blocks of type ggml_type, one row of blocks per output row).
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
    ggml_type: str | None = None  # fmt "gguf": the GGML type name

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
        elif self.fmt == "gguf":
            specs.append(TensorSpec("blocks", (self.rows, gguf_row_bytes(self.in_features, self.ggml_type)), "uint8"))
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


def gguf_row_bytes(in_features: int, fmt: str) -> int:
    """Bytes of one row in a GGUF format (whole blocks; a partial last block, which format_problem
    refuses before anything is built, is counted as a whole one so cost models never fail)."""
    t = ggml_type(fmt)
    return -(-in_features // t.block_size) * t.type_size


def format_problem(in_features: int, setting: LayerCompression) -> str | None:
    """Why a layer with `setting` cannot be stored in its GGUF format (None: it can, or no format)."""
    if setting.format is None:
        return None
    if setting.sparsity > 0 or setting.rank is not None:
        return (f"format {setting.format} stores a dense weight: drop sparsity and rank "
                "(llama.cpp has neither sparse nor factorised layers)")
    block = ggml_type(setting.format).block_size
    if in_features % block:
        return f"{in_features} input features are not a multiple of {block}, which {setting.format} needs"
    return None


def check_format(name: str, in_features: int, setting: LayerCompression) -> None:
    problem = format_problem(in_features, setting)
    if problem is not None:
        raise RecipeError(f"layer {name!r}: {problem}")


def plan_storage(in_features: int, out_features: int, bias: bool, setting: LayerCompression) -> StoragePlan:
    """Storage of one linear layer (low-rank is handled by layer_plans)."""
    common = dict(in_features=in_features, out_features=out_features, bias=bias, bits=setting.bits,
                  group_size=setting.group_size, symmetric=setting.symmetric)
    if setting.format is not None:  # sparsity / rank with a format are refused by format_problem
        dense = out_features * in_features
        if setting.format == "BF16":
            return StoragePlan(**common, fmt="plain", rows=out_features, values=dense)
        return StoragePlan(**common, fmt="gguf", rows=out_features, values=dense, ggml_type=setting.format)
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
    """Exact bytes of the model that apply(model, recipe) builds; a tied lm_head is counted once (as the embedding).

    Raises RecipeError for a recipe apply() refuses: a GGUF format on a layer it cannot store.
    """
    resolved = recipe.resolve(graph)
    layers: dict[str, int] = {}
    for layer in recipe.kept_layers(graph):
        if layer.tied:
            continue
        in_f, out_f = graph.sliced_shape(layer, recipe.width)
        check_format(layer.name, in_f, resolved[layer.name])
        layers[layer.name] = layer_weight_bytes(in_f, out_f, layer.bias, resolved[layer.name])
    keep = None if recipe.keep_blocks is None else set(recipe.keep_blocks)
    embedding = token_embedding(graph)
    if embedding is None and embedding_setting(graph, recipe.embedding) is not None:
        raise RecipeError(f"no token embedding table of {graph.vocab_size}x{graph.hidden_size} found in this "
                          f"{graph.model_type} model: leave the recipe's embedding at 16 bits")
    other = 0
    for p in graph.others:
        if p.block is None or keep is None or p.block in keep:
            other += embedding_bytes(graph, recipe.embedding) if p is embedding else 2 * p.numel
    return MemoryReport(total_bytes=sum(layers.values()) + other, layers=layers, other_bytes=other)


def token_embedding(graph: ModelGraph) -> OtherParam | None:
    """The token embedding table among the graph's other parameters (vocab x hidden, outside the blocks)."""
    size = graph.vocab_size * graph.hidden_size
    return next((p for p in graph.others if p.block is None and p.numel == size), None)


def embedding_setting(graph: ModelGraph, setting: LayerCompression) -> LayerCompression | None:
    """The storage of the token embedding table as a [vocab, hidden] matrix (None: plain bf16), checked."""
    if setting.sparsity > 0 or setting.rank is not None:
        raise RecipeError("the token embedding can be quantized (bits, group_size, format), not pruned or factorised")
    if setting.format in (None, "BF16") and not setting.quantized:
        return None
    check_format("token embedding", graph.hidden_size, setting)
    return setting


def embedding_bytes(graph: ModelGraph, setting: LayerCompression) -> int:
    """Bytes of the token embedding table stored per `setting` (rows of hidden_size weights, one per token)."""
    storage = embedding_setting(graph, setting)
    if storage is None:
        return 2 * graph.vocab_size * graph.hidden_size
    return plan_storage(graph.hidden_size, graph.vocab_size, False, storage).nbytes


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
