"""Low-rank factorisation: W [out, in] ~ B A with A [r, in], B [out, r] from the truncated SVD.

W = U S V^T; A = sqrt(S_r) V_r^T, B = U_r sqrt(S_r) (the singular values split evenly
so both factors have similar ranges, which suits the quantization that may follow).
The relative Frobenius error is sqrt(sum of the dropped sigma^2 / sum of all sigma^2).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import torch

from search.compress.layer import WorkLayer
from search.compress.registry import layer_transform
from search.recipe import LayerCompression

# A search applies many recipes to one model: the SVD of a weight does not depend on the rank asked
# for, so it is cached, keyed by a hash of the weight's bytes (bounded in total elements).
_SVD_CACHE: OrderedDict[bytes, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = OrderedDict()
SVD_CACHE_ELEMENTS = 24_000_000  # 96 MB of float32; demo:minilm needs about 16M
_cached_elements = 0


def svd(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reduced SVD (U, S, Vh) of a float32 weight, cached by content."""
    global _cached_elements
    w = weight.detach().to(torch.float32).contiguous().cpu()
    key = hashlib.blake2b(w.numpy().tobytes(), digest_size=20).digest() + repr(tuple(w.shape)).encode()
    hit = _SVD_CACHE.get(key)
    if hit is not None:
        _SVD_CACHE.move_to_end(key)
        return hit
    result = torch.linalg.svd(w, full_matrices=False)
    size = sum(t.numel() for t in result)
    _SVD_CACHE[key] = result
    _cached_elements += size
    while _cached_elements > SVD_CACHE_ELEMENTS and len(_SVD_CACHE) > 1:
        _, old = _SVD_CACHE.popitem(last=False)
        _cached_elements -= sum(t.numel() for t in old)
    return result


def factorize(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(A [rank, in], B [out, rank]) in float32 with B @ A the best rank-`rank` approximation of weight."""
    u, s, vh = svd(weight)
    root = s[:rank].sqrt()
    return (root.unsqueeze(1) * vh[:rank]).to(weight.device), (u[:, :rank] * root.unsqueeze(0)).to(weight.device)


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
