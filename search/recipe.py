"""The ONE recipe schema: CompressionConfig, what the search proposes, a worker
applies, the API returns and a user re-applies.

Per-layer entries are keyed by exact module name, by a ``re:`` pattern, or by
``_default``; resolution order is exact name, then the first matching pattern
(in insertion order), then ``_default``. Global structure (width multipliers,
kept blocks) sits beside the per-layer table.

On one layer the methods compose in a fixed order (see docs/recipes.md):
structure (width slicing, dropped blocks) -> low-rank factors -> sparsity ->
quantization of whatever weights remain.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from search.errors import DeviceFitError, RecipeError


class GraphShape(Protocol):
    """What a recipe needs to know of a model (search.space.graph.ModelGraph has it): the recipe sits
    below the model graph, so it names only this much of it."""

    num_blocks: int
    layers: Sequence[Any]  # LayerInfo: name, block, tied, in_features, out_features

    def sliced_shape(self, layer: Any, width: Width) -> tuple[int, int]: ...

ALLOWED_BITS = (16, 8, 6, 5, 4, 3, 2)
DEFAULT_KEY = "_default"
PATTERN_PREFIX = "re:"


class SparsityPattern(StrEnum):
    UNSTRUCTURED = "unstructured"
    TWO_FOUR = "2:4"
    CHANNEL = "channel"  # whole output channels (rows of the weight)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LayerCompression(_Frozen):
    """How one linear layer is compressed."""

    bits: int = Field(16, description="weight bits: 16 = unquantized half precision; 8, 6, 5, 4, 3, 2 = integer")
    group_size: int | None = Field(
        128, description="input columns sharing one scale/zero point; null = one group per output row")
    symmetric: bool = Field(False, description="symmetric quantization (no zero point) or asymmetric")
    sparsity: float = Field(0.0, description="fraction of weights set to zero, in [0, 1)")
    sparsity_pattern: SparsityPattern = SparsityPattern.UNSTRUCTURED
    sparsity_score: Literal["magnitude", "wanda"] = Field(
        "magnitude", description="pruning score: |W| or Wanda's |W|*||x|| (needs calibration data)")
    rank: int | float | None = Field(
        None, description="low-rank factorisation: an integer rank, a fraction (0, 1) of full rank, or null")
    format: str | None = Field(
        None, description="a runtime tensor type (GGUF: Q8_0, Q6_K, Q5_K, Q5_1, Q5_0, Q4_K, Q4_1, Q4_0, Q3_K, "
                          "Q2_K, F16, BF16): the weights use that block format exactly; bits, group_size and "
                          "symmetric follow from it. null = devicefit's own group-wise format")
    method: Literal["rtn", "gptq"] = Field(
        "rtn", description="how weights are rounded: round-to-nearest, or GPTQ with calibration data "
                           "(no effect on an unquantized layer)")
    act_order: bool = Field(
        False, description="GPTQ only: quantize input columns in decreasing order of their activation energy")

    @model_validator(mode="before")
    @classmethod
    def _format_sets_layout(cls, data: object) -> object:
        """A named format fixes bits/group size/symmetry; explicit values must agree with it."""
        if not isinstance(data, dict) or data.get("format") is None:
            return data
        from search.formats.ggml_types import ggml_type

        try:
            t = ggml_type(str(data["format"]))
        except DeviceFitError as exc:
            raise ValueError(str(exc)) from None
        layout = {"bits": t.nominal_bits, "group_size": t.block_size if t.quantized else 128,
                  "symmetric": t.symmetric}
        for key, value in layout.items():
            given = data.get(key)
            if given is not None and key != "group_size" and given != value:
                raise ValueError(f"format {t.name} means {key}={value}, not {given}; drop {key} or the format")
            if key == "group_size" and t.quantized and given is not None and given != value:
                raise ValueError(f"format {t.name} means group_size={value}, not {given}")
        return {**data, **layout, "format": t.name}

    @field_validator("bits")
    @classmethod
    def _bits_allowed(cls, v: int) -> int:
        if v not in ALLOWED_BITS:
            raise ValueError(f"bits {v} is not supported; use one of {', '.join(map(str, ALLOWED_BITS))}")
        return v

    @field_validator("group_size")
    @classmethod
    def _group_positive(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"group_size {v} must be a positive integer (or null for one group per row)")
        return v

    @field_validator("sparsity")
    @classmethod
    def _sparsity_range(cls, v: float) -> float:
        if not 0.0 <= v < 1.0:
            raise ValueError(f"sparsity {v} must be in [0, 1): it is the fraction of weights removed")
        return v

    @field_validator("rank")
    @classmethod
    def _rank_positive(cls, v: int | float | None) -> int | float | None:
        if v is None:
            return v
        if isinstance(v, bool):
            raise ValueError("rank must be an integer, a fraction in (0, 1), or null")
        if isinstance(v, float) and v.is_integer() and v >= 1:
            v = int(v)
        if isinstance(v, int) and v < 1:
            raise ValueError(f"rank {v} must be at least 1")
        if isinstance(v, float) and not 0.0 < v < 1.0:
            raise ValueError(f"rank fraction {v} must be in (0, 1); write an integer for an absolute rank")
        return v

    @model_validator(mode="after")
    def _two_four_is_half(self) -> LayerCompression:
        if self.sparsity_pattern == SparsityPattern.TWO_FOUR and self.sparsity not in (0.0, 0.5):
            raise ValueError(f"2:4 sparsity removes exactly half the weights: set sparsity to 0.5, not {self.sparsity}")
        return self

    @model_validator(mode="after")
    def _act_order_needs_gptq(self) -> LayerCompression:
        if self.act_order and self.method != "gptq":
            raise ValueError("act_order only applies to method 'gptq'; set method to 'gptq' or drop act_order")
        return self

    @property
    def quantized(self) -> bool:
        return self.bits < 16

    @property
    def is_identity(self) -> bool:
        return not self.quantized and self.sparsity == 0.0 and self.rank is None

    def rank_for(self, in_features: int, out_features: int) -> int | None:
        """Absolute rank for a layer of this shape (None = not factorised)."""
        if self.rank is None:
            return None
        full = min(in_features, out_features)
        if isinstance(self.rank, float):
            return max(1, int(round(self.rank * full)))
        return self.rank


class Width(_Frozen):
    """Global width multipliers: the fraction of MLP neurons and of attention heads kept."""

    mlp: float = Field(1.0, description="fraction of MLP intermediate neurons kept, in (0, 1]")
    heads: float = Field(1.0, description="fraction of attention heads (key/value groups) kept, in (0, 1]")

    @field_validator("mlp", "heads")
    @classmethod
    def _fraction(cls, v: float) -> float:
        if not 0.0 < v <= 1.0:
            raise ValueError(f"width multiplier {v} must be in (0, 1]")
        return v


class CompressionConfig(_Frozen):
    """A compression recipe. Round-trips through JSON; apply(model, recipe) is pure in both."""

    layers: dict[str, LayerCompression] = Field(
        default_factory=lambda: {DEFAULT_KEY: LayerCompression()},
        description="per-layer entries keyed by module name, 're:' regex, or '_default'")
    width: Width = Width()
    keep_blocks: tuple[int, ...] | None = Field(
        None, description="indices of transformer blocks kept (null = all)")
    embedding: LayerCompression = Field(
        default_factory=LayerCompression,
        description="token embeddings (a tied output head follows them); only bits/group_size/format apply; "
                    "the default keeps them at 16 bits")

    @field_validator("layers")
    @classmethod
    def _patterns_compile(cls, v: dict[str, LayerCompression]) -> dict[str, LayerCompression]:
        for key in v:
            if key.startswith(PATTERN_PREFIX):
                try:
                    re.compile(key[len(PATTERN_PREFIX):])
                except re.error as exc:
                    raise ValueError(f"layer pattern {key!r} is not a valid regular expression: {exc}") from None
        return v

    @field_validator("embedding")
    @classmethod
    def _embedding_rounds_to_nearest(cls, v: LayerCompression) -> LayerCompression:
        if v.method != "rtn":
            raise ValueError("the embedding table is rounded to nearest: GPTQ applies to linear layers only")
        return v

    @field_validator("keep_blocks")
    @classmethod
    def _blocks_sorted(cls, v: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("keep_blocks must keep at least one block")
        if any(b < 0 for b in v) or len(set(v)) != len(v):
            raise ValueError(f"keep_blocks {list(v)} must be distinct non-negative block indices")
        return tuple(sorted(v))

    # ---- construction -------------------------------------------------
    @classmethod
    def uniform(cls, *, bits: int = 16, group_size: int | None = 128, symmetric: bool = False,
                sparsity: float = 0.0, sparsity_pattern: str = "unstructured",
                sparsity_score: str = "magnitude", rank: int | float | None = None,
                width: float = 1.0, heads: float = 1.0,
                keep_blocks: tuple[int, ...] | None = None, method: str = "rtn",
                act_order: bool = False) -> CompressionConfig:
        """One setting for every layer (the CLI's --bits/--sparsity/... shortcuts)."""
        return parse_recipe({
            "layers": {DEFAULT_KEY: {
                "bits": bits, "group_size": group_size, "symmetric": symmetric, "sparsity": sparsity,
                "sparsity_pattern": sparsity_pattern, "sparsity_score": sparsity_score, "rank": rank,
                "method": method, "act_order": act_order}},
            "width": {"mlp": width, "heads": heads},
            "keep_blocks": keep_blocks,
        })

    def rounded_to_nearest(self) -> CompressionConfig:
        """The same storage with plain rounding everywhere: what a timing builds (GPTQ picks other codes
        in the same format, which changes quality, never speed) without needing calibration data."""
        layers = {k: s.model_copy(update={"method": "rtn", "act_order": False}) for k, s in self.layers.items()}
        return self.model_copy(update={"layers": layers})

    def to_json(self, indent: int | None = None) -> str:
        return self.model_dump_json(indent=indent, exclude_defaults=False)

    # ---- resolution against a model -----------------------------------
    def resolve(self, graph: GraphShape) -> dict[str, LayerCompression]:
        """Map every compressible layer of the (depth-pruned) graph to its settings.

        Raises RecipeError naming the key when an exact name is unknown, a pattern
        matches no layer, a tied layer is named, or a rank exceeds full rank.
        """
        self.check_blocks(graph.num_blocks)
        kept = self.kept_layers(graph)
        names = {layer.name for layer in graph.layers}
        patterns = [(k, re.compile(k[len(PATTERN_PREFIX):])) for k in self.layers if k.startswith(PATTERN_PREFIX)]
        for key in self.layers:
            if key == DEFAULT_KEY or key.startswith(PATTERN_PREFIX):
                continue
            if key not in names:
                raise RecipeError(f"recipe names layer {key!r}, which the model does not have "
                                  f"(e.g. {graph.layers[0].name!r}); use an exact module name or a 're:' pattern")
        matched = {k: False for k, _ in patterns}
        for layer in graph.layers:
            for key, rx in patterns:
                if rx.search(layer.name):
                    matched[key] = True
        for key, hit in matched.items():
            if not hit:
                raise RecipeError(f"layer pattern {key!r} matches no layer of the model")
        default = self.layers.get(DEFAULT_KEY, LayerCompression())
        resolved: dict[str, LayerCompression] = {}
        for layer in kept:
            setting = self.layers.get(layer.name)
            if setting is None:
                setting = next((self.layers[k] for k, rx in patterns if rx.search(layer.name)), default)
                if layer.tied:
                    setting = LayerCompression()  # tied to the embedding: patterns and _default leave it
            elif layer.tied and not setting.is_identity:
                raise RecipeError(f"layer {layer.name!r} shares its weight with the input embedding; "
                                  "compressing it alone is not supported")
            self._check_rank(layer, setting, graph)
            resolved[layer.name] = setting
        return resolved

    def check_blocks(self, num_blocks: int) -> None:
        if self.keep_blocks is not None and max(self.keep_blocks) >= num_blocks:
            raise RecipeError(f"keep_blocks {list(self.keep_blocks)} names a block past the last one "
                              f"(the model has blocks 0..{num_blocks - 1})")

    def kept_layers(self, graph: GraphShape) -> list[Any]:
        keep = set(self.keep_blocks) if self.keep_blocks is not None else None
        return [layer for layer in graph.layers if layer.block is None or keep is None or layer.block in keep]

    def _check_rank(self, layer: Any, setting: LayerCompression, graph: GraphShape) -> None:
        if setting.rank is None:
            return
        in_f, out_f = graph.sliced_shape(layer, self.width)
        full = min(in_f, out_f)
        rank = setting.rank_for(in_f, out_f)
        if rank is not None and rank > full:
            raise RecipeError(f"rank {rank} for layer {layer.name!r} exceeds its full rank {full}")

    # ---- display --------------------------------------------------------
    def summary(self) -> str:
        """Compact human summary, e.g. '4b/g128 · 50% 2:4 · r0.25 gptq · mlp×0.5 · 4 blocks'."""
        parts = []
        for key, s in self.layers.items():
            bits = f"{s.bits}b" + (f"/g{s.group_size}" if s.quantized and s.group_size else "")
            bits = s.format if s.format else bits
            bits += "s" if s.quantized and s.symmetric and not s.format else ""
            bits += f" {s.sparsity:.0%} {s.sparsity_pattern.value}" if s.sparsity else ""
            bits += f" r{s.rank:g}" if s.rank is not None else ""
            bits += (" gptq" + ("-ao" if s.act_order else "")) if s.method == "gptq" and s.quantized else ""
            label = "" if key == DEFAULT_KEY else f"{key.removeprefix(PATTERN_PREFIX)}="
            parts.append(label + bits)
        text = ", ".join(parts) if len(parts) <= 3 else f"{len(parts)} layer rules"
        if self.width.mlp < 1:
            text += f" · mlp×{self.width.mlp:g}"
        if self.width.heads < 1:
            text += f" · heads×{self.width.heads:g}"
        if self.keep_blocks is not None:
            text += f" · {len(self.keep_blocks)} blocks"
        if not self.embedding.is_identity:
            text += f" · emb {self.embedding.format or f'{self.embedding.bits}b'}"
        return text


def parse_recipe(data: str | bytes | dict) -> CompressionConfig:
    """Build a recipe from JSON text or a dict, turning validation errors into one readable line."""
    try:
        if isinstance(data, str | bytes):
            data = json.loads(data)
        return CompressionConfig.model_validate(data)
    except json.JSONDecodeError as exc:
        raise RecipeError(f"recipe is not valid JSON: {exc}") from None
    except ValidationError as exc:
        raise RecipeError(f"invalid recipe: {describe_validation_error(exc)}") from None


def describe_validation_error(exc: ValidationError) -> str:
    """First pydantic error as 'field.path: message' (the message says what to fix)."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "value"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}"


def evenly_spaced_blocks(num_blocks: int, fraction: float) -> tuple[int, ...]:
    """Blocks kept by the --depth shortcut: evenly spaced, always the first and last."""
    if not 0.0 < fraction <= 1.0:
        raise RecipeError(f"depth fraction {fraction} must be in (0, 1]")
    keep = max(1, int(round(fraction * num_blocks)))
    if keep >= num_blocks:
        return tuple(range(num_blocks))
    if keep == 1:
        return (0,)
    step = (num_blocks - 1) / (keep - 1)
    return tuple(sorted({int(round(i * step)) for i in range(keep)}))
