"""Shared helpers for the export tests: tiny LoadedModels and the logit / embedding comparisons."""

import torch

from search.models import ByteTokenizer, LoadedModel
from search.space.graph import graph_from_model
from tests.compress.helpers import tiny_model, token_batch


def tiny_loaded(family: str, **overrides) -> LoadedModel:
    model = tiny_model(family, **overrides)
    return LoadedModel(ref=f"tiny-{family}", model=model, tokenizer=ByteTokenizer(384), graph=graph_from_model(model))


@torch.no_grad()
def logits(model, ids: torch.Tensor | None = None) -> torch.Tensor:
    ids = token_batch(2, 24) if ids is None else ids
    return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.float()


def kl(reference: torch.Tensor, other: torch.Tensor) -> float:
    """Mean per-token KL(reference || other) of two logit tensors."""
    p, q = reference.log_softmax(-1), other.log_softmax(-1)
    return float((p.exp() * (p - q)).sum(-1).mean())


@torch.no_grad()
def mean_pooled(model, batch: dict) -> torch.Tensor:
    hidden = model(**batch).last_hidden_state.float()
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return (hidden * mask).sum(1) / mask.sum(1)
