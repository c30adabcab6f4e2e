"""Calibration statistics of the layers a recipe compresses, attached to their WorkLayers.

Data-aware layer transforms look at the layer's inputs on the calibration rows:
Wanda's score needs the per-input-channel squared norms (``WorkLayer.in_sq_norm``), GPTQ
the summed outer products X^T X (``WorkLayer.in_hessian``, [in, in] float32 per layer: the
largest statistic, e.g. 268 MB for an 8192-wide down projection). Both come from one
forward pass over the calibration rows, on the model as it is when the layer transforms
start (depth and width already applied, weights still float32), with factorised layers
observed as their two fp32 factors.

Hessians of a large model do not fit in memory at once (a Llama 3 8B: 32 down projections of
14336 inputs, 26 GB), so ``statistics_passes`` splits the layers into passes whose Hessians stay
within ``DEVICEFIT_HESSIAN_BYTES`` (default 1 GiB); the caller builds each pass's layers before the
next pass. Every pass measures the same float model, so the result does not depend on the split.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from search.compress.activations import input_statistics
from search.compress.layer import WorkLayer
from search.compress.modules import LowRankLinear, plain_linear
from search.recipe import LayerCompression


def needs_statistics(setting: LayerCompression) -> bool:
    """Whether a layer's transforms look at its calibration inputs."""
    return needs_norms(setting) or needs_hessian(setting)


def needs_norms(setting: LayerCompression) -> bool:
    return setting.sparsity > 0 and setting.sparsity_score == "wanda"


def needs_hessian(setting: LayerCompression) -> bool:
    return setting.method == "gptq" and setting.quantized


DEFAULT_HESSIAN_BYTES = 2**30


def hessian_budget() -> int:
    return int(os.environ.get("DEVICEFIT_HESSIAN_BYTES") or DEFAULT_HESSIAN_BYTES)


def statistics_passes(parts: dict[str, list[WorkLayer]], targets: dict[str, LayerCompression],
                      budget: int | None = None) -> list[set[str]]:
    """The layers that need statistics, split into passes whose Hessians fit ``budget`` bytes together
    (a layer larger than the budget gets a pass of its own). Empty when no layer needs statistics."""
    budget = hessian_budget() if budget is None else budget
    passes: list[set[str]] = []
    used = budget  # forces a first pass
    for name, setting in targets.items():
        if not needs_statistics(setting):
            continue
        size = sum(p.in_features ** 2 * 4 for p in parts[name]) if needs_hessian(setting) else 0
        if passes and used + size <= budget:
            passes[-1].add(name)
            used += size
        else:
            passes.append({name})
            used = size
    return passes


def attach_statistics(model: nn.Module, parts: dict[str, list[WorkLayer]],
                      targets: dict[str, LayerCompression], calibration: torch.Tensor | None,
                      only: set[str] | None = None) -> None:
    """Measure and attach the statistics of every target layer that needs them (nothing without calibration);
    ``only``: of these layers alone (one of ``statistics_passes``)."""
    wanted = {name: parts[name] for name, setting in targets.items() if needs_statistics(setting)}
    if wanted and calibration is not None:
        _attach_input_statistics(model, wanted, targets, calibration, set(wanted) if only is None else only)


def release_statistics(pieces: list[WorkLayer]) -> None:
    """Drop a built layer's statistics (its Hessian is the memory a pass is bounded by)."""
    for piece in pieces:
        piece.in_sq_norm = piece.in_hessian = None


def _attach_input_statistics(model: nn.Module, parts: dict[str, list[WorkLayer]],
                             targets: dict[str, LayerCompression], calibration: torch.Tensor,
                             only: set[str]) -> None:
    """Norms and Hessians of the ``only`` layers, measured on the model as it is now with every data-aware
    factorised layer (``parts``) installed as its fp32 factors, whichever pass measures."""
    probes: dict[str, nn.Module] = {}
    keys: dict[str, list[str]] = {}
    for name, pieces in parts.items():
        if len(pieces) == 1:
            probes[name], keys[name] = model.get_submodule(name), [name]
            continue
        # factor b's input is a's output: the fp32 factors are installed so both can be observed, once
        # (copies, taken before any pass: building a layer may prune its pieces in place)
        installed = model.get_submodule(name)
        if not getattr(installed, "statistics_probe", False):
            installed = LowRankLinear(*(plain_linear(p.weight, p.bias) for p in pieces))
            installed.statistics_probe = True
            model.set_submodule(name, installed)
        probes[name + ".a"], probes[name + ".b"] = installed.a, installed.b
        keys[name] = [name + ".a", name + ".b"]
    norm_probes = {k: probes[k] for name in only if needs_norms(targets[name]) for k in keys[name]}
    hessian_probes = {k: probes[k] for name in only if needs_hessian(targets[name]) for k in keys[name]}
    norms, hessians, tokens = input_statistics(model, calibration, norms=norm_probes, hessians=hessian_probes)
    for name in only:
        for piece, key in zip(parts[name], keys[name], strict=True):
            piece.in_sq_norm = norms.get(key)
            piece.in_hessian = hessians.get(key)
            piece.in_tokens = tokens
