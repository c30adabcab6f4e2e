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
from typing import Any

from search.recipe import (
    DEFAULT_KEY,
    PATTERN_PREFIX,
    CompressionConfig,
    LayerCompression,
    Width,
    evenly_spaced_blocks,
)
from search.space.graph import ModelGraph
from search.spec import SearchSpace

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
    if value in choices:
        return value
    return min(choices, key=lambda c: abs(float(c) - float(value)))


class RecipeSpace:
    """A SearchSpace laid over one model: parameter choices and params <-> recipe."""

    def __init__(self, graph: ModelGraph, space: SearchSpace):
        self.graph, self.space = graph, space
        self.groups = layer_groups(graph, space.granularity)
        axes = set(space.axes)
        per_group: dict[str, list[Any]] = {}
        if "bits" in axes:
            per_group["bits"] = list(space.bits)
            if len(space.group_sizes) > 1:
                per_group["group"] = list(space.group_sizes)
        if "sparsity" in axes:
            options = [sparsity_option(s, p) for s in space.sparsity for p in space.sparsity_patterns
                       if s == 0 or p != "2:4" or s == 0.5]
            per_group["sparsity"] = list(dict.fromkeys(options))
        if "rank" in axes:
            per_group["rank"] = list(space.ranks)
        self.choices: dict[str, list[Any]] = {}
        for group in self.groups:
            for name, options in per_group.items():
                if len(options) > 1:
                    self.choices[f"{group.label}.{name}"] = options
        if "width" in axes and len(space.width) > 1:
            self.choices["width.mlp"] = list(space.width)
            self.choices["width.heads"] = list(space.width)
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
        layers: dict[str, LayerCompression] = {}
        for group in self.groups:
            bits = self._get(params, f"{group.label}.bits", s.bits[0] if "bits" in s.axes else 16)
            group_size = self._get(params, f"{group.label}.group", s.group_sizes[0])
            fraction, pattern = parse_sparsity_option(self._get(
                params, f"{group.label}.sparsity",
                sparsity_option(s.sparsity[0], s.sparsity_patterns[0]) if "sparsity" in s.axes else "0"))
            rank = self._get(params, f"{group.label}.rank", s.ranks[0] if "rank" in s.axes else 1.0)
            layers[group.key] = LayerCompression(
                bits=bits, group_size=group_size, sparsity=fraction, sparsity_pattern=pattern,
                sparsity_score=s.sparsity_score if fraction > 0 else "magnitude",
                rank=None if rank >= 1.0 else float(rank))
        layers = _fold_common_setting(layers)
        width = Width(mlp=self._get(params, "width.mlp", s.width[0] if "width" in s.axes else 1.0),
                      heads=self._get(params, "width.heads", s.width[0] if "width" in s.axes else 1.0))
        depth = self._get(params, "depth", s.depth[0] if "depth" in s.axes else 1.0)
        keep = evenly_spaced_blocks(self.graph.num_blocks, depth)
        keep_blocks = None if len(keep) == self.graph.num_blocks else keep
        return CompressionConfig(layers=layers, width=width, keep_blocks=keep_blocks)

    # ---- recipes -> params (seed trials) -------------------------------
    def params(self, *, bits: int = 16, group_size: int = 128, sparsity: str = "0", rank: float = 1.0,
               mlp: float = 1.0, heads: float = 1.0, depth: float = 1.0,
               per_group: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """Parameters of a uniform recipe (per_group overrides by group label), snapped to the choices."""
        wanted: dict[str, Any] = {"width.mlp": mlp, "width.heads": heads, "depth": depth}
        for group in self.groups:
            settings = {"bits": bits, "group": group_size, "sparsity": sparsity, "rank": rank}
            settings.update((per_group or {}).get(group.label, {}))
            for name, value in settings.items():
                wanted[f"{group.label}.{name}"] = value
        params = {}
        for name, options in self.choices.items():
            value = wanted[name]
            params[name] = value if isinstance(value, str) and value in options else (
                options[0] if isinstance(value, str) else _nearest(options, value))
        return params
