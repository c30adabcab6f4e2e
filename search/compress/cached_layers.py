"""One apply()'s view of a VariantCache: which target layers hit, and what the build may skip because of it.

compose.apply asks this object for
- ``hits``: target name (after depth renaming) -> a private copy of the cached compressed module;
- ``working_copy()``: the model's deep copy in which the weights of everything that will be
  replaced anyway (hit layers, dropped blocks, an embedding table that hits) are shared with
  the source instead of copied. Shared tensors are only read (width slicing and the statistics
  pass read them; every transform writes new tensors) and never reach the result;
- ``width_values_unused()``: width pruning may slice by structure alone (no activation pass)
  when every layer it slices is a hit and no statistics pass runs on the sliced weights;
- ``observed_for(misses)``: the hits the misses' statistics pass must still observe;
- ``embedding_table``: compress_embedding's table cache; ``width_energy``: width pruning's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from search.compress.layer_statistics import needs_statistics
from search.compress.transforms.depth import block_list_path
from search.compress.variant_cache import VariantCache
from search.compress.variant_keys import embedding_key, layer_keys, width_energy_key
from search.memory import embedding_setting
from search.recipe import CompressionConfig, LayerCompression
from search.space.graph import LayerInfo, ModelGraph


class CachedLayers:
    def __init__(self, variants: VariantCache, model: nn.Module, graph: ModelGraph, recipe: CompressionConfig,
                 sources: dict[str, tuple[LayerInfo, LayerCompression]], calibration: torch.Tensor | None):
        variants.bind(model)
        self.variants, self.model, self.graph, self.recipe = variants, model, graph, recipe
        self.sources, self.calibration = sources, calibration
        self.device = next(model.parameters()).device
        self.keys = layer_keys(graph, recipe, sources, calibration, self.device)
        self.hits: dict[str, nn.Module] = {}
        for name, key in self.keys.items():
            module = variants.get(key)
            if module is not None:
                self.hits[name] = module
        setting = embedding_setting(graph, recipe.embedding)
        self.table = variants.get(embedding_key(setting, self.device)) if setting is not None else None

    # ---- what the build can skip ------------------------------------------------------------
    def _statistics_run(self) -> bool:
        return self.calibration is not None and any(
            needs_statistics(setting) for name, (_, setting) in self.sources.items() if name not in self.hits)

    def observed_for(self, misses: dict[str, LayerCompression]) -> dict[str, LayerCompression]:
        """Data-aware factorised hits: the statistics pass runs them as fp32 factors (layer_statistics)."""
        if not self._statistics_run():
            return {}
        observed = {}
        for name, (layer, setting) in self.sources.items():
            if name in self.hits and needs_statistics(setting) and \
                    setting.rank_for(*self.graph.sliced_shape(layer, self.recipe.width)) is not None:
                observed[name] = setting
        return observed

    def width_values_unused(self) -> bool:
        """Every block layer of the pruned model is a hit and no statistics are measured on them."""
        fam = self.graph.fam
        kept = len(self.recipe.keep_blocks) if self.recipe.keep_blocks is not None else self.graph.num_blocks
        every = (f"{fam.block_prefix.format(i=i)}.{suffix}" for i in range(kept) for suffix in fam.block_layers.values())
        return all(name in self.hits for name in every) and not self._statistics_run()

    # ---- the working copy ---------------------------------------------------------------------
    def working_copy(self) -> nn.Module:
        """copy.deepcopy(model), sharing the tensors of modules the build replaces or drops."""
        model, graph = self.model, self.graph
        replaced = [layer.name for name, (layer, _) in self.sources.items() if name in self.hits]
        if self.recipe.keep_blocks is not None:
            path = block_list_path(graph)
            replaced += [f"{path}.{i}" for i in range(graph.num_blocks) if i not in set(self.recipe.keep_blocks)]
        if self.table is not None:
            embedding = model.get_input_embeddings()
            replaced += [n for n, m in model.named_modules() if m is embedding]
            replaced += [layer.name for layer in self.recipe.kept_layers(graph) if layer.tied]
        exact, below = set(replaced), tuple(p + "." for p in replaced)
        shared: dict[int, torch.Tensor] = {}
        kept: set[int] = set()  # a tensor that any other path reaches (ties, shared modules) is copied as usual
        for path, module in model.named_modules(remove_duplicate=False):
            into = shared if path in exact or path.startswith(below) else None
            for t in (*module._parameters.values(), *module._buffers.values()):
                if t is None:
                    continue
                if into is None:
                    kept.add(id(t))
                else:
                    into[id(t)] = t
        return copy.deepcopy(model, memo={k: t for k, t in shared.items() if k not in kept})

    # ---- the embedding table --------------------------------------------------------------------
    def embedding_table(self, setting: LayerCompression, build: Callable[[], nn.Module]) -> nn.Module:
        if self.table is not None:
            return self.table
        table = build()
        self.variants.store(embedding_key(setting, self.device), table)
        return table

    def width_energy(self, measure: Callable[[], dict]) -> dict:
        key = width_energy_key(self.graph, self.recipe, self.calibration, self.device)
        return self.variants.get_or_build(key, measure)

    def store_built(self, built: dict[str, nn.Module]) -> None:
        for name, module in built.items():
            self.variants.store(self.keys[name], module)
