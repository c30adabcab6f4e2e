"""The search space as Optuna parameters, and the recipe a trial's parameters mean.

Layers are grouped by the spec's granularity (one group for the whole model, one
per role, one per block, or one per layer); each group gets the same small set
of categorical parameters, so every trial has the same parameter set whatever
it chose. Fixed spaces suit every sampler (NSGA-II crossover, multivariate TPE,
GP); settings a choice makes irrelevant are simply ignored by recipe().

Each group becomes one recipe entry: ``_default`` (model), a ``re:`` pattern
(role, block) or an exact module name (layer, and lm_head).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from search.formats.ggml_types import GGML_TYPES
from search.recipe import (
    DEFAULT_KEY,
    PATTERN_PREFIX,
    CompressionConfig,
    LayerCompression,
    Width,
    evenly_spaced_blocks,
)
from search.space.graph import ModelGraph
from search.space.runtime_choices import (
    embedding_format,
    format_choices,
    gguf_format,
    preferred_format,
    runnable_width,
)
from search.spec import SearchSpace

if TYPE_CHECKING:
    from search.hw_profiles.runtimes import RuntimeCaps

UNSTRUCTURED = "unstructured"


@dataclass(frozen=True)
class LayerGroup:
    """Layers that share one compression choice."""

    key: str  # recipe key: '_default', 're:<pattern>' or an exact module name
    label: str  # parameter-name prefix, e.g. 'q', 'block3', 'lm_head'
    layers: tuple[str, ...]


def layer_groups(graph: ModelGraph, granularity: str) -> list[LayerGroup]:
    """The groups of compressible (untied) layers for a granularity: model, role, block or layer."""
    layers = [layer for layer in graph.layers if not layer.tied]
    if granularity == "model":
        return [LayerGroup(DEFAULT_KEY, "all", tuple(layer.name for layer in layers))]
    if granularity == "layer":
        return [LayerGroup(layer.name, layer.name, (layer.name,)) for layer in layers]
    fam = graph.fam
    in_blocks = re.escape(fam.block_prefix).replace(re.escape("{i}"), r"\d+")
    groups: dict[str, LayerGroup] = {}
    for layer in layers:
        if layer.block is None:  # lm_head: its own group, named exactly
            label, key = layer.role, layer.name
        elif granularity == "role":
            label = layer.role
            key = f"{PATTERN_PREFIX}^{in_blocks}\\.{re.escape(fam.block_layers[layer.role])}$"
        elif granularity == "block":
            label = f"block{layer.block}"
            key = f"{PATTERN_PREFIX}^{re.escape(fam.block_prefix.format(i=layer.block))}\\."
        else:
            raise ValueError(f"unknown granularity {granularity!r}")
        old = groups.get(label)
        groups[label] = LayerGroup(key, label, (old.layers if old else ()) + (layer.name,))
    return list(groups.values())


def sparsity_option(fraction: float, pattern: str = UNSTRUCTURED) -> str:
    """Sparsity and its pattern as one categorical choice: '0', '0.25', '0.5@2:4'."""
    if fraction == 0:
        return "0"
    return f"{fraction:g}" if pattern == UNSTRUCTURED else f"{fraction:g}@{pattern}"


def parse_sparsity_option(option: str) -> tuple[float, str]:
    fraction, _, pattern = option.partition("@")
    return float(fraction), pattern or UNSTRUCTURED


def _fold_common_setting(layers: dict[str, LayerCompression]) -> dict[str, LayerCompression]:
    """The most common setting becomes '_default' so recipes stay short ('4b/g128, ...q_proj$=8b')."""
    if DEFAULT_KEY in layers or not layers:
        return layers
    settings = list(layers.values())
    common = max(settings, key=settings.count)
    rest = {key: setting for key, setting in layers.items() if setting != common}
    return {**rest, DEFAULT_KEY: common}


def _nearest(choices: list[Any], value: Any) -> Any:
    """The choice closest to ``value``: itself, a GGUF type of the nearest bits, the first for other text."""
    if value in choices:
        return value
    if isinstance(value, str) and value in GGML_TYPES and all(c in GGML_TYPES for c in choices):
        return min(choices, key=lambda c: abs(GGML_TYPES[c].nominal_bits - GGML_TYPES[value].nominal_bits))
    if isinstance(value, str):
        return choices[0]
    return min(choices, key=lambda c: abs(float(c) - float(value)))


class RecipeSpace:
    """A SearchSpace laid over one model: parameter choices and params <-> recipe.

    With a runtime's capabilities (``caps``), only what that runtime runs is proposed: its bits and
    group sizes, its sparsity patterns, low-rank only where it has factorised layers, and for GGUF
    runtimes each group's GGUF type among the runtime's types (Q8_0, Q6_K, Q5_K, Q5_0, Q5_1, Q4_K, Q4_0,
    Q4_1, Q3_K, Q2_K within the space's bits; a type whose blocks do not fit a layer's rows falls back per
    tensor), widths that keep rows whole blocks, and quantized embeddings. Quantized groups also choose
    the rounding method (round-to-nearest or GPTQ), pruned groups the pruning score (|W| or Wanda).
    """

    def __init__(self, graph: ModelGraph, space: SearchSpace, caps: RuntimeCaps | None = None):
        self.graph, self.space, self.caps = graph, space, caps
        self.gguf = caps is not None and caps.gguf
        self.groups = layer_groups(graph, space.granularity)
        axes = set(space.axes)
        per_group: dict[str, list[Any]] = {}
        self.bits: list[int] = [16]
        self.formats: list[str] = ["F16"]  # GGUF runtimes: the types a group chooses between
        self.group_sizes: list[int] = [space.group_sizes[0]]
        if "bits" in axes:
            self.bits = [b for b in space.bits if caps is None or self.gguf or caps.bits is None
                         or b in caps.bits] or [16]
            if self.gguf:
                self.formats = format_choices(space.bits, caps) or ["F16"]
                per_group["format"] = self.formats
            else:
                per_group["bits"] = self.bits
                groups = [g for g in space.group_sizes if caps is None or caps.group_sizes is None
                          or g in caps.group_sizes]
                if len(groups) > 1:
                    per_group["group"] = groups
                self.group_sizes = groups or [caps.group_sizes[0] if caps and caps.group_sizes
                                              else space.group_sizes[0]]
            quantizes = any(GGML_TYPES[f].quantized for f in self.formats) if self.gguf else min(self.bits) < 16
            if quantizes:
                per_group["method"] = list(space.methods)
        if "sparsity" in axes:
            patterns = [p for p in space.sparsity_patterns if caps is None or p in caps.sparsity_patterns]
            options = [sparsity_option(s, p) for s in space.sparsity for p in patterns
                       if s == 0 or p != "2:4" or s == 0.5]
            per_group["sparsity"] = list(dict.fromkeys(options)) or ["0"]
            if any(o != "0" for o in per_group["sparsity"]):
                per_group["score"] = list(space.sparsity_scores)
        if "rank" in axes and (caps is None or caps.factorised_layers):
            per_group["rank"] = list(space.ranks)
        self.choices: dict[str, list[Any]] = {}
        for group in self.groups:
            for name, options in per_group.items():
                if len(options) > 1:
                    self.choices[f"{group.label}.{name}"] = options
        if self.gguf and caps.quantized_embeddings and len(self.formats) > 1:
            self.choices["embedding.format"] = self.formats
        if "width" in axes:
            for part in ("mlp", "heads"):
                widths = [w for w in space.width if not self.gguf or runnable_width(graph, part, w)]
                if len(widths) > 1:
                    self.choices[f"width.{part}"] = widths
        if "depth" in axes and len(space.depth) > 1:
            self.choices["depth"] = list(space.depth)

    # ---- Optuna ----------------------------------------------------------
    def suggest(self, trial: Any) -> CompressionConfig:
        """Ask the trial for every parameter and return the recipe they mean."""
        params = {name: trial.suggest_categorical(name, options) for name, options in self.choices.items()}
        return self.recipe(params)

    def distributions(self) -> dict[str, Any]:
        import optuna

        return {name: optuna.distributions.CategoricalDistribution(options)
                for name, options in self.choices.items()}

    # ---- params -> recipe -----------------------------------------------
    def _get(self, params: dict[str, Any], name: str, fixed: Any) -> Any:
        options = self.choices.get(name)
        return params[name] if options is not None else fixed

    def recipe(self, params: dict[str, Any]) -> CompressionConfig:
        s = self.space
        width = Width(mlp=self._get(params, "width.mlp", s.width[0] if "width" in s.axes else 1.0),
                      heads=self._get(params, "width.heads", s.width[0] if "width" in s.axes else 1.0))
        layers: dict[str, LayerCompression] = {}
        for group in self.groups:
            method = self._get(params, f"{group.label}.method", s.methods[0] if "bits" in s.axes else "rtn")
            if self.gguf:  # per layer, as llama.cpp falls back per tensor when the blocks do not fit its rows
                chosen = self._get(params, f"{group.label}.format", self.formats[0])
                formats = {name: gguf_format(self.graph, (name,), width, chosen, self.caps) for name in group.layers}
                common = max(formats.values(), key=list(formats.values()).count)
                layers[group.key] = _in_format(common, method)
                layers.update((name, _in_format(f, method)) for name, f in formats.items()
                              if f != common and name != group.key)
                continue
            bits = self._get(params, f"{group.label}.bits", self.bits[0])
            group_size = self._get(params, f"{group.label}.group", self.group_sizes[0])
            fraction, pattern = parse_sparsity_option(self._get(
                params, f"{group.label}.sparsity",
                sparsity_option(s.sparsity[0], s.sparsity_patterns[0]) if "sparsity" in s.axes else "0"))
            score = self._get(params, f"{group.label}.score", s.sparsity_scores[0])
            rank = self._get(params, f"{group.label}.rank", s.ranks[0] if "rank" in s.axes else 1.0)
            symmetric = bool(self.caps is not None and self.caps.symmetric)
            layers[group.key] = LayerCompression(
                bits=bits, group_size=group_size, symmetric=symmetric, sparsity=fraction, sparsity_pattern=pattern,
                sparsity_score=score if fraction > 0 else "magnitude",
                rank=None if rank >= 1.0 else float(rank), method=method if bits < 16 else "rtn")
        layers = _fold_common_setting(layers)
        embedding = LayerCompression()
        if "embedding.format" in self.choices:
            embedding = LayerCompression(format=embedding_format(self.graph, params["embedding.format"], self.caps))
        depth = self._get(params, "depth", s.depth[0] if "depth" in s.axes else 1.0)
        keep = evenly_spaced_blocks(self.graph.num_blocks, depth)
        keep_blocks = None if len(keep) == self.graph.num_blocks else keep
        return CompressionConfig(layers=layers, width=width, keep_blocks=keep_blocks, embedding=embedding)

    # ---- recipes -> params (seed trials) -------------------------------
    def params(self, *, bits: int = 16, format: str | None = None, group_size: int = 128, sparsity: str = "0",
               score: str = "magnitude", method: str = "rtn", rank: float = 1.0, mlp: float = 1.0,
               heads: float = 1.0, depth: float = 1.0,
               per_group: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """Parameters of a uniform recipe (per_group overrides by group label), snapped to the choices.

        On a GGUF runtime ``format`` names the type; without one, ``bits`` means the runtime's preferred
        type of those bits that fits the group's rows (Q4_K for 4, Q4_0 on rows of 384). Elsewhere
        ``format`` is ignored."""
        uniform = {"bits": bits, "format": format, "group": group_size, "sparsity": sparsity, "score": score,
                   "method": method, "rank": rank}
        wanted: dict[str, Any] = {"width.mlp": mlp, "width.heads": heads, "depth": depth,
                                  "embedding.format": self._format(format, bits, [self.graph.hidden_size])}
        in_features = {layer.name: layer.in_features for layer in self.graph.layers}
        for group in self.groups:
            override = (per_group or {}).get(group.label, {})
            settings = {**uniform, **override}
            if "bits" in override and "format" not in override:
                settings["format"] = None  # a bits override means that bits' type, not the uniform one
            settings["format"] = self._format(settings["format"], settings["bits"],
                                              [in_features[name] for name in group.layers])
            for name, value in settings.items():
                wanted[f"{group.label}.{name}"] = value
        return {name: _nearest(options, wanted[name]) for name, options in self.choices.items()}

    def _format(self, format_name: str | None, bits: int, rows: list[int]) -> str:
        if format_name is not None or not self.gguf:
            return format_name or "F16"
        return preferred_format(bits, self.caps, rows)


def _in_format(format_name: str, method: str) -> LayerCompression:
    """A GGUF-typed setting; the rounding method only where there is rounding (a float type has none)."""
    return LayerCompression(format=format_name, method=method if GGML_TYPES[format_name].quantized else "rtn")
