"""Calibration statistics of the layers a recipe compresses, attached to their WorkLayers.

Data-aware layer transforms look at the layer's inputs on the calibration rows:
Wanda's score needs the per-input-channel squared norms (``WorkLayer.in_sq_norm``).
They are measured on the model as it is when the layer transforms start (depth and
width already applied, weights still float32), with factorised layers observed as
their two fp32 factors.
"""

from __future__ import annotations

import torch
from torch import nn

from search.compress.activations import input_sq_norms
from search.compress.layer import WorkLayer
from search.compress.modules import LowRankLinear, plain_linear
from search.recipe import LayerCompression


def needs_statistics(setting: LayerCompression) -> bool:
    """Whether a layer's transforms look at its calibration inputs."""
    return setting.sparsity > 0 and setting.sparsity_score == "wanda"


def attach_statistics(model: nn.Module, parts: dict[str, list[WorkLayer]],
                      targets: dict[str, LayerCompression], calibration: torch.Tensor | None) -> None:
    """Measure and attach the statistics of every target layer that needs them (nothing without calibration)."""
    wanted = {name: parts[name] for name, setting in targets.items() if needs_statistics(setting)}
    if wanted and calibration is not None:
        _attach_input_norms(model, wanted, calibration)


def _attach_input_norms(model: nn.Module, parts: dict[str, list[WorkLayer]], calibration: torch.Tensor) -> None:
    """Wanda's per-input-channel norms, measured on the model as it is now (factorised layers included)."""
    probes: dict[str, nn.Module] = {}
    for name, pieces in parts.items():
        if len(pieces) == 1:
            probes[name] = model.get_submodule(name)
        else:  # factor b's input is a's output: install the fp32 factors so both can be observed
            a, b = (plain_linear(p.weight, p.bias) for p in pieces)
            model.set_submodule(name, LowRankLinear(a, b))
            probes[name + ".a"], probes[name + ".b"] = a, b
    norms = input_sq_norms(model, probes, calibration)
    for name, pieces in parts.items():
        keys = [name] if len(pieces) == 1 else [name + ".a", name + ".b"]
        for piece, key in zip(pieces, keys, strict=True):
            piece.in_sq_norm = norms.get(key)
