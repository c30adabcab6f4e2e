"""Token embeddings stored compressed: the [vocab, hidden] table held by a compressed linear module.

``QuantizedEmbedding.table`` is a GgufLinear (GGUF blocks; ``table.ggml_type`` and
``table.blocks`` are what a GGUF exporter writes as token_embd) or a QuantizedLinear
(devicefit's b-bit groups) of in_features = hidden, out_features = vocab. A lookup
returns rows of the table as the runtime dequantizes them (llama.cpp's get_rows gives
float32), in the model's activation dtype -- gathering rows of the table cached in that
dtype gives the same numbers as casting the float32 rows.

A tied output head is the *same* table module (model.lm_head is table), so the stored
bytes exist once, the dequantized cache exists once, and an export writes the head as
an alias of the embedding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class QuantizedEmbedding(nn.Module):
    def __init__(self, table: nn.Module, *, dtype: torch.dtype = torch.bfloat16, padding_idx: int | None = None,
                 embed_scale: torch.Tensor | None = None):
        super().__init__()
        self.table = table
        self.num_embeddings, self.embedding_dim = table.out_features, table.in_features
        self.padding_idx = padding_idx
        # the activation dtype, kept as an empty non-persistent buffer so that model.to(dtype) moves it
        self.register_buffer("dtype_probe", torch.empty(0, dtype=dtype), persistent=False)
        if embed_scale is not None:  # Gemma multiplies the looked-up rows by sqrt(hidden)
            self.register_buffer("embed_scale", embed_scale.detach().clone(), persistent=False)
        else:
            self.embed_scale = None

    @property
    def ggml_type(self) -> str | None:
        """The GGML type of the table's bytes (None for devicefit's own groups); with `blocks`, the same
        contract as GgufLinear, so a GGUF writer treats both alike."""
        return getattr(self.table, "ggml_type", None)

    @property
    def blocks(self) -> torch.Tensor | None:
        return getattr(self.table, "blocks", None)

    @property
    def weight(self) -> torch.Tensor:
        return self.table.cached_weight(self.dtype_probe.dtype)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        rows = F.embedding(input_ids, self.table.cached_weight(self.dtype_probe.dtype))
        if self.embed_scale is not None:
            rows = rows * self.embed_scale.to(rows.dtype)
        return rows

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"
