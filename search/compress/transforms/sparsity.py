"""Pruning masks: magnitude |W| or Wanda |W| * ||x|| scores; unstructured, 2:4 or whole output channels.

- unstructured: in every output row the k = round(s * in) lowest-scoring weights are zeroed
  (Wanda's per-output comparison group);
- 2:4: in every group of 4 consecutive input weights the 2 lowest are zeroed (a trailing
  partial group of m weights loses floor(m / 2));
- channel: the round(s * out) output rows with the lowest summed score are removed.
Counts come from search.memory so the stored size is known before pruning.
"""

from __future__ import annotations

import torch

from search.compress.layer import WorkLayer
from search.compress.registry import layer_transform
from search.memory import pruned_per_row, pruned_rows
from search.recipe import LayerCompression, SparsityPattern


def weight_scores(layer: WorkLayer, score: str) -> torch.Tensor:
    """|W|, or |W| * ||x_j||_2 when Wanda is asked for and calibration norms exist."""
    magnitude = layer.weight.abs()
    if score == "wanda" and layer.in_sq_norm is not None:
        return magnitude * layer.in_sq_norm.sqrt().unsqueeze(0)
    return magnitude


def element_keep_mask(scores: torch.Tensor, setting: LayerCompression) -> torch.Tensor:
    out_f, in_f = scores.shape
    keep = torch.ones_like(scores, dtype=torch.bool)
    if setting.sparsity_pattern == SparsityPattern.TWO_FOUR:
        full = in_f // 4 * 4
        if full:
            groups = scores[:, :full].reshape(out_f, -1, 4)
            drop = groups.topk(2, dim=-1, largest=False).indices
            keep[:, :full] = keep[:, :full].reshape(out_f, -1, 4).scatter(-1, drop, False).reshape(out_f, full)
        tail = in_f - full
        if tail // 2:
            drop = scores[:, full:].topk(tail // 2, dim=-1, largest=False).indices + full
            keep.scatter_(1, drop, False)
        return keep
    k = pruned_per_row(in_f, setting)
    if k:
        keep.scatter_(1, scores.topk(k, dim=1, largest=False).indices, False)
    return keep


def row_keep_mask(scores: torch.Tensor, setting: LayerCompression) -> torch.Tensor:
    out_f = scores.shape[0]
    keep = torch.ones(out_f, dtype=torch.bool, device=scores.device)
    k = pruned_rows(out_f, setting)
    if k:
        keep[scores.sum(dim=1).topk(k, largest=False).indices] = False
    return keep


@layer_transform("sparsity")
def sparsify(layer: WorkLayer, setting: LayerCompression) -> WorkLayer:
    """Zero the pruned weights and record the mask the storage step keeps."""
    if setting.sparsity == 0:
        return layer
    scores = weight_scores(layer, setting.sparsity_score)
    if setting.sparsity_pattern == SparsityPattern.CHANNEL:
        layer.keep_rows = row_keep_mask(scores, setting)
        layer.weight = layer.weight * layer.keep_rows.unsqueeze(1)
    else:
        layer.keep = element_keep_mask(scores, setting)
        layer.weight = layer.weight * layer.keep
    return layer
