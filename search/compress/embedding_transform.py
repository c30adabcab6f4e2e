"""The token embedding table per recipe.embedding: a GGUF format or b-bit groups, else left in bf16.

The table is compressed like a linear layer of in = hidden, out = vocab (rows are tokens,
as llama.cpp's token_embd stores them) by the same "quantize" transform, wrapped in a
QuantizedEmbedding; a tied output head becomes that same table module. Memory is
search.memory.embedding_bytes, from the same storage plan.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from search.compress.layer import WorkLayer
from search.compress.modules import module_from_plan
from search.compress.registry import transform
from search.compress.table_embedding import QuantizedEmbedding
from search.errors import ModelError
from search.memory import embedding_setting, plan_storage
from search.recipe import CompressionConfig, LayerCompression
from search.space.graph import ModelGraph


def compress_embedding(model: nn.Module, graph: ModelGraph, recipe: CompressionConfig, *,
                       dtype: torch.dtype, structure_only: bool,
                       table_cache: Callable[[LayerCompression, Callable[[], nn.Module]], nn.Module] | None = None,
                       ) -> None:
    """Replace the input embedding (and a tied head) in place when recipe.embedding compresses it.
    table_cache(setting, build): the table module, from a cache of built tables (apply's VariantCache)."""
    setting = embedding_setting(graph, recipe.embedding)  # RecipeError for what cannot be stored
    if setting is None:
        return
    embedding = model.get_input_embeddings()
    name = next((n for n, m in model.named_modules() if m is embedding), None)
    if name is None or tuple(embedding.weight.shape) != (graph.vocab_size, graph.hidden_size):
        raise ModelError(f"cannot find the {graph.vocab_size}x{graph.hidden_size} token embedding of this model")
    if structure_only:
        table = module_from_plan(plan_storage(graph.hidden_size, graph.vocab_size, False, setting))
    else:
        def build() -> nn.Module:
            return transform("quantize")(WorkLayer(weight=embedding.weight.detach().to(torch.float32), bias=None),
                                         setting)

        table = build() if table_cache is None else table_cache(setting, build)
    model.set_submodule(name, QuantizedEmbedding(table, dtype=dtype, padding_idx=getattr(embedding, "padding_idx", None),
                                                 embed_scale=getattr(embedding, "embed_scale", None)))
    for layer in recipe.kept_layers(graph):
        if layer.tied:
            model.set_submodule(layer.name, table)
