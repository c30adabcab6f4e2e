"""Small shared helpers for the compression tests."""

import torch

from search.models import build_from_config
from tests.conftest import tiny_config


def tiny_model(model_type: str, **overrides):
    torch.manual_seed(0)
    return build_from_config(tiny_config(model_type, **overrides))


def token_batch(n: int = 2, seq: int = 12, vocab: int = 384, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (n, seq), generator=g)


@torch.no_grad()
def outputs(model, ids: torch.Tensor) -> torch.Tensor:
    """Logits of a causal LM or last hidden states of an encoder, as float32."""
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids))
    return (out.logits if hasattr(out, "logits") else out.last_hidden_state).float()
