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
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from search.compress.embedding_transform import compress_embedding
from search.compress.layer import WorkLayer
from search.compress.layer_statistics import attach_statistics
from search.compress.modules import (
    LowRankLinear,
    PackedLinear,
    conv1d_to_linear,
    module_from_plan,
)
from search.compress.registry import transform
from search.compress.transforms.depth import renamed_for_depth
from search.memory import check_format, layer_plans
from search.recipe import CompressionConfig, LayerCompression
from search.space.graph import ModelGraph, graph_from_model


def apply(model: nn.Module, recipe: CompressionConfig, calibration: torch.Tensor | None = None, *,
          dtype: torch.dtype = torch.bfloat16, structure_only: bool = False,
          graph: ModelGraph | None = None) -> nn.Module:
    """A new compressed model (the input is left untouched); calibration: LongTensor [n, seq] of token ids."""
    graph = graph or graph_from_model(model)
    resolved = recipe.resolve(graph)  # validates the recipe against the model first
    for layer in recipe.kept_layers(graph):
        check_format(layer.name, graph.sliced_shape(layer, recipe.width)[0], resolved[layer.name])
    new = copy.deepcopy(model).eval()
    _to_linear_layout(new, graph)
    transform("depth")(new, graph, recipe)
    transform("width")(new, graph, recipe, calibration=calibration, structure_only=structure_only)
    targets: dict[str, LayerCompression] = {}
    for layer in recipe.kept_layers(graph):
        setting = resolved[layer.name]
        if not layer.tied and (not setting.is_identity or setting.format not in (None, "BF16")):
            targets[renamed_for_depth(layer.name, graph, recipe.keep_blocks)] = setting
    if structure_only:
        for name, setting in targets.items():
            new.set_submodule(name, _empty_module(new.get_submodule(name), setting))
    else:
        _compress_layers(new, targets, calibration)
    compress_embedding(new, graph, recipe, dtype=dtype, structure_only=structure_only)
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


def _compress_layers(model: nn.Module, targets: dict[str, LayerCompression],
                     calibration: torch.Tensor | None) -> None:
    lowrank, sparsity, quantize = transform("lowrank"), transform("sparsity"), transform("quantize")
    parts = {name: lowrank(WorkLayer.of(model.get_submodule(name)), s) for name, s in targets.items()}
    attach_statistics(model, parts, targets, calibration)
    for name, setting in targets.items():
        stored = [quantize(sparsity(part, setting), setting) for part in parts[name]]
        model.set_submodule(name, stored[0] if len(stored) == 1 else LowRankLinear(*stored))


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
