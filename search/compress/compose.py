"""apply(model, recipe): compose the registered transforms into a new compressed model.

Order (docs/recipes.md): GPT-2 Conv1D -> Linear layout, then depth (drop blocks)
-> width (slice neurons / heads) -> per layer: low-rank -> sparsity ->
quantization + packed storage (a GGUF format: GgufLinear) -> the token embedding
table per recipe.embedding (a tied output head then shares the compressed table).
Everything runs on a float32 deep copy; the result
is cast to bfloat16 (packed buffers keep their own dtypes). With
structure_only=True no data is computed: the modules get the shapes and types
the recipe implies (the first neurons/heads are kept) so a saved state_dict can
be loaded into them.

With a VariantCache (``variants=``), every target layer whose key (search/compress/variant_keys.py)
was built before is swapped in from the cache and only the misses are compressed: the
statistics pass runs for the data-aware misses only (not at all when they all hit), width
pruning skips its activation pass when every layer it slices is a hit (their values are
replaced anyway: only the shapes and attributes it sets matter) and otherwise takes the
activation energies measured for the same kept blocks before, and the working copy shares
- instead of copying - the weights of the layers that are swapped out. The result is
bit-identical to a build without the cache (tests/compress/test_variant_cache.py).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from search.compress.cached_layers import CachedLayers
from search.compress.embedding_transform import compress_embedding
from search.compress.layer import WorkLayer
from search.compress.layer_statistics import attach_statistics, release_statistics, statistics_passes
from search.compress.modules import (
    LowRankLinear,
    PackedLinear,
    conv1d_to_linear,
    module_from_plan,
)
from search.compress.registry import transform
from search.compress.transforms.depth import renamed_for_depth
from search.compress.variant_cache import VariantCache
from search.memory import check_format, layer_plans
from search.recipe import CompressionConfig, LayerCompression
from search.space.graph import LayerInfo, ModelGraph, graph_from_model


def apply(model: nn.Module, recipe: CompressionConfig, calibration: torch.Tensor | None = None, *,
          dtype: torch.dtype = torch.bfloat16, structure_only: bool = False,
          graph: ModelGraph | None = None, variants: VariantCache | None = None) -> nn.Module:
    """A new compressed model (the input is left untouched); calibration: LongTensor [n, seq] of token ids;
    variants: compressed layers of this model kept from earlier recipes (filled with this one's)."""
    graph = graph or graph_from_model(model)
    resolved = recipe.resolve(graph)  # validates the recipe against the model first
    for layer in recipe.kept_layers(graph):
        check_format(layer.name, graph.sliced_shape(layer, recipe.width)[0], resolved[layer.name])
    sources: dict[str, tuple[LayerInfo, LayerCompression]] = {}
    for layer in recipe.kept_layers(graph):
        setting = resolved[layer.name]
        if not layer.tied and (not setting.is_identity or setting.format not in (None, "BF16")):
            sources[renamed_for_depth(layer.name, graph, recipe.keep_blocks)] = (layer, setting)
    targets = {name: setting for name, (_, setting) in sources.items()}
    cached = None if structure_only or variants is None else CachedLayers(variants, model, graph, recipe, sources,
                                                                           calibration)
    new = (cached.working_copy() if cached else copy.deepcopy(model)).eval()
    _to_linear_layout(new, graph)
    transform("depth")(new, graph, recipe)
    width_from_cache = cached is not None and cached.width_values_unused()
    transform("width")(new, graph, recipe, calibration=None if width_from_cache else calibration,
                       structure_only=structure_only or width_from_cache,
                       energy_cache=cached.width_energy if cached else None)
    if structure_only:
        for name, setting in targets.items():
            new.set_submodule(name, _empty_module(new.get_submodule(name), setting))
    elif cached is None:
        _compress_layers(new, targets, calibration)
    else:
        misses = {name: targets[name] for name in targets if name not in cached.hits}
        cached.store_built(_compress_layers(new, misses, calibration, observed=cached.observed_for(misses)))
        for name, module in cached.hits.items():
            new.set_submodule(name, module)
    compress_embedding(new, graph, recipe, dtype=dtype, structure_only=structure_only,
                       table_cache=cached.embedding_table if cached else None)
    cast_storage(new, dtype)
    return new


def _to_linear_layout(model: nn.Module, graph: ModelGraph) -> None:
    """Replace GPT-2's Conv1D ([in, out] weights) by equivalent nn.Linear modules."""
    if graph.fam.weight_layout != "conv1d":
        return
    for layer in graph.layers:
        module = model.get_submodule(layer.name)
        if type(module).__name__ == "Conv1D":
            model.set_submodule(layer.name, conv1d_to_linear(module))


def _compress_layers(model: nn.Module, targets: dict[str, LayerCompression], calibration: torch.Tensor | None,
                     observed: dict[str, LayerCompression] | None = None) -> dict[str, nn.Module]:
    """Compress `targets` in place (returns their modules); `observed` layers only take part in the
    statistics pass (as the layers they will be replaced by are observed there)."""
    lowrank, sparsity, quantize = transform("lowrank"), transform("sparsity"), transform("quantize")
    measured = {**(observed or {}), **targets}
    parts = {name: lowrank(WorkLayer.of(model.get_submodule(name)), s) for name, s in measured.items()}
    built = {}

    def build(name: str) -> None:
        setting = targets[name]
        stored = [quantize(sparsity(part, setting), setting) for part in parts[name]]
        built[name] = stored[0] if len(stored) == 1 else LowRankLinear(*stored)
        release_statistics(parts[name])

    # in passes whose Hessians fit in memory; every pass measures the float model, so the swaps wait.
    # Only targets are measured: an observed layer is only installed as its fp32 factors, never built
    for layers in statistics_passes(parts, targets) if calibration is not None else []:
        attach_statistics(model, parts, measured, calibration, only=layers)
        for name in layers & targets.keys():
            build(name)
    for name in targets.keys() - built.keys():
        build(name)
    for name in targets:
        model.set_submodule(name, built[name])
    return {name: built[name] for name in targets}


def _empty_module(module: nn.Module, setting: LayerCompression) -> nn.Module:
    """The compressed module's shapes and types for `setting`, without computing any data."""
    plans = layer_plans(module.in_features, module.out_features, module.bias is not None, setting)
    built = [module_from_plan(plan) for plan in plans.values()]
    return built[0] if len(built) == 1 else LowRankLinear(*built)


def cast_storage(model: nn.Module, dtype: torch.dtype) -> None:
    """Parameters and persistent float buffers to `dtype`; packed modules and non-persistent buffers
    (rotary inv_freq, position ids) keep theirs."""
    for module in model.modules():
        if isinstance(module, PackedLinear):
            continue  # GgufLinear needs no exception: its blocks are uint8 and its bias becomes `dtype`
        for param in module.parameters(recurse=False):
            if param.is_floating_point() and param.dtype != dtype:
                param.data = param.data.to(dtype)
        for name, buf in module.named_buffers(recurse=False):
            if buf is not None and buf.is_floating_point() and name not in module._non_persistent_buffers_set:
                module._buffers[name] = buf.to(dtype)
