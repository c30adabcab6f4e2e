"""Low-rank factorisation: W [out, in] ~ B A with A [r, in], B [out, r] from the truncated SVD.

W = U S V^T; A = sqrt(S_r) V_r^T, B = U_r sqrt(S_r) (the singular values split evenly
so both factors have similar ranges, which suits the quantization that may follow).
The relative Frobenius error is sqrt(sum of the dropped sigma^2 / sum of all sigma^2).
"""

from __future__ import annotations

import torch

from search.compress.layer import WorkLayer
from search.compress.registry import layer_transform
from search.recipe import LayerCompression


def factorize(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(A [rank, in], B [out, rank]) in float32 with B @ A the best rank-`rank` approximation of weight."""
    u, s, vh = torch.linalg.svd(weight.to(torch.float32), full_matrices=False)
    root = s[:rank].sqrt()
    return root.unsqueeze(1) * vh[:rank], u[:, :rank] * root.unsqueeze(0)


def tail_energy_error(weight: torch.Tensor, rank: int) -> float:
    """The seeds' formula: sqrt(sum_{i > rank} sigma_i^2 / sum_i sigma_i^2)."""
    s = torch.linalg.svdvals(weight.to(torch.float64))
    return float((s[rank:].pow(2).sum() / s.pow(2).sum()).sqrt())


@layer_transform("lowrank")
def low_rank(layer: WorkLayer, setting: LayerCompression) -> list[WorkLayer]:
    """[layer] unchanged, or [A (no bias), B (with the layer's bias)] when the setting has a rank."""
    rank = setting.rank_for(layer.in_features, layer.out_features)
    if rank is None:
        return [layer]
    a, b = factorize(layer.weight, rank)
    return [WorkLayer(weight=a, bias=None), WorkLayer(weight=b, bias=layer.bias)]
