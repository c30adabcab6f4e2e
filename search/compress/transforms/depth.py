"""Depth: drop whole transformer blocks.

The kept blocks are renumbered 0..k-1 in the block list, every `layer_idx`
attribute inside them (the KV-cache slot of an attention module) is renumbered to
match, and the config's layer count (and per-layer `layer_types`) follows.
"""

from __future__ import annotations

from torch import nn

from search.compress.registry import model_transform
from search.recipe import CompressionConfig
from search.space.graph import ModelGraph


def block_list_path(graph: ModelGraph) -> str:
    """Module path of the ModuleList holding the blocks, e.g. 'model.layers'."""
    return graph.fam.block_prefix.removesuffix(".{i}")


def renamed_for_depth(name: str, graph: ModelGraph, keep_blocks: tuple[int, ...] | None) -> str:
    """A layer's module name after the dropped blocks are gone (block i -> its new index)."""
    if keep_blocks is None:
        return name
    prefix = block_list_path(graph) + "."
    if not name.startswith(prefix):
        return name
    index, rest = name[len(prefix):].split(".", 1)
    return f"{prefix}{keep_blocks.index(int(index))}.{rest}"


@model_transform("depth")
def drop_blocks(model: nn.Module, graph: ModelGraph, recipe: CompressionConfig, **_) -> None:
    keep = recipe.keep_blocks
    if keep is None or len(keep) == graph.num_blocks:
        return
    recipe.check_blocks(graph.num_blocks)
    path = block_list_path(graph)
    parent_path, attr = path.rsplit(".", 1) if "." in path else ("", path)
    parent = model.get_submodule(parent_path)
    blocks = getattr(parent, attr)
    kept = nn.ModuleList([blocks[i] for i in keep])
    for new_index, block in enumerate(kept):
        for module in block.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    setattr(parent, attr, kept)
    config = model.config
    config.num_hidden_layers = len(keep)
    layer_types = getattr(config, "layer_types", None)
    if layer_types:
        config.layer_types = [layer_types[i] for i in keep]
