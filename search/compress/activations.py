"""Calibration statistics collected with forward hooks.

input_sq_norms runs the model on calibration token batches and sums x_j^2 over
every token for each input channel j of the chosen modules: Wanda's ||X_j||_2 is
its square root, and width pruning ranks neurons / heads by it.
"""

from __future__ import annotations

import torch
from torch import nn


def input_sq_norms(model: nn.Module, modules: dict[str, nn.Module], calibration: torch.Tensor,
                   batch_size: int = 8) -> dict[str, torch.Tensor]:
    """{name: float32 [in_features]} sum over calibration tokens of the squared module inputs."""
    sums: dict[str, torch.Tensor] = {}

    def hook_for(name: str):
        def hook(_module, args):
            x = args[0].detach().to(torch.float32)
            sq = x.pow(2).reshape(-1, x.shape[-1]).sum(dim=0)
            sums[name] = sums[name] + sq if name in sums else sq
        return hook

    handles = [m.register_forward_pre_hook(hook_for(name)) for name, m in modules.items()]
    try:
        run_calibration(model, calibration, batch_size)
    finally:
        for h in handles:
            h.remove()
    return sums


@torch.no_grad()
def run_calibration(model: nn.Module, calibration: torch.Tensor, batch_size: int = 8) -> None:
    """Forward passes over the calibration batches (outputs are discarded; hooks observe)."""
    device = next(model.parameters()).device
    ids = calibration.to(device=device, dtype=torch.long)
    if ids.dim() == 1:
        ids = ids.unsqueeze(0)
    for start in range(0, ids.shape[0], batch_size):
        chunk = ids[start:start + batch_size]
        model(input_ids=chunk, attention_mask=torch.ones_like(chunk))
