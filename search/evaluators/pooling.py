"""Sentence embeddings from an encoder's last hidden states.

Mean pooling over the tokens the attention mask marks as real is how
all-MiniLM-L6-v2 and most sentence-transformers encoders form their embedding
(see the model's 1_Pooling/config.json: pooling_mode_mean_tokens = true).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """[batch, seq, hidden] states and a [batch, seq] 0/1 mask -> [batch, hidden] fp32 means of real tokens."""
    mask = attention_mask.to(device=hidden.device).float().unsqueeze(-1)
    summed = (hidden.float() * mask).sum(dim=1)
    return summed / mask.sum(dim=1).clamp(min=1.0)
