"""Calibration statistics of the layers a recipe compresses, attached to their WorkLayers.

Data-aware layer transforms look at the layer's inputs on the calibration rows:
Wanda's score needs the per-input-channel squared norms (``WorkLayer.in_sq_norm``), GPTQ
the summed outer products X^T X (``WorkLayer.in_hessian``, [in, in] float32 per layer: the
largest statistic, e.g. 268 MB for an 8192-wide down projection). Both come from one
forward pass over the calibration rows, on the model as it is when the layer transforms
start (depth and width already applied, weights still float32), with factorised layers
observed as their two fp32 factors.
"""

from __future__ import annotations

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


def attach_statistics(model: nn.Module, parts: dict[str, list[WorkLayer]],
                      targets: dict[str, LayerCompression], calibration: torch.Tensor | None) -> None:
    """Measure and attach the statistics of every target layer that needs them (nothing without calibration)."""
    wanted = {name: parts[name] for name, setting in targets.items() if needs_statistics(setting)}
    if wanted and calibration is not None:
        _attach_input_statistics(model, wanted, targets, calibration)


def _attach_input_statistics(model: nn.Module, parts: dict[str, list[WorkLayer]],
                             targets: dict[str, LayerCompression], calibration: torch.Tensor) -> None:
    """Norms and Hessians, measured on the model as it is now (factorised layers included)."""
    probes: dict[str, nn.Module] = {}
    keys: dict[str, list[str]] = {}
    for name, pieces in parts.items():
        if len(pieces) == 1:
            probes[name], keys[name] = model.get_submodule(name), [name]
        else:  # factor b's input is a's output: install the fp32 factors so both can be observed
            a, b = (plain_linear(p.weight, p.bias) for p in pieces)
            model.set_submodule(name, LowRankLinear(a, b))
            probes[name + ".a"], probes[name + ".b"] = a, b
            keys[name] = [name + ".a", name + ".b"]
    norm_probes = {k: probes[k] for name in parts if needs_norms(targets[name]) for k in keys[name]}
    hessian_probes = {k: probes[k] for name in parts if needs_hessian(targets[name]) for k in keys[name]}
    norms, hessians, tokens = input_statistics(model, calibration, norms=norm_probes, hessians=hessian_probes)
    for name, pieces in parts.items():
        for piece, key in zip(pieces, keys[name], strict=True):
            piece.in_sq_norm = norms.get(key)
            piece.in_hessian = hessians.get(key)
            piece.in_tokens = tokens
