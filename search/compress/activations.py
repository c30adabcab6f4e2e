"""Calibration statistics collected with forward hooks.

input_sq_norms runs the model on calibration token batches and sums x_j^2 over
every token for each input channel j of the chosen modules: Wanda's ||X_j||_2 is
its square root, and width pruning ranks neurons / heads by it. input_statistics also
sums X^T X (GPTQ's Hessian, [in, in] float32 per module) in the same pass.
"""

from __future__ import annotations

import torch
from torch import nn


def input_sq_norms(model: nn.Module, modules: dict[str, nn.Module], calibration: torch.Tensor,
                   batch_size: int = 8) -> dict[str, torch.Tensor]:
    """{name: float32 [in_features]} sum over calibration tokens of the squared module inputs."""
    return input_statistics(model, calibration, norms=modules, batch_size=batch_size)[0]


def input_statistics(model: nn.Module, calibration: torch.Tensor, *, norms: dict[str, nn.Module] | None = None,
                     hessians: dict[str, nn.Module] | None = None, batch_size: int = 8
                     ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], int]:
    """One pass over the calibration rows: ({name: sum x_j^2 per input channel} for `norms`,
    {name: float32 [in, in] sum of x x^T over tokens} for `hessians`, number of tokens)."""
    sq_sums: dict[str, torch.Tensor] = {}
    outer: dict[str, torch.Tensor] = {}
    tokens: dict[str, int] = {}

    def hook_for(name: str, norm: bool, hessian: bool):
        def hook(_module, args):
            x = args[0].detach().to(torch.float32)
            x = x.reshape(-1, x.shape[-1])
            tokens[name] = tokens.get(name, 0) + x.shape[0]
            if norm:
                sq = x.pow(2).sum(dim=0)
                sq_sums[name] = sq_sums[name] + sq if name in sq_sums else sq
            if hessian:
                xtx = x.T @ x
                if name in outer:
                    outer[name] += xtx
                else:
                    outer[name] = xtx
        return hook

    norms, hessians = norms or {}, hessians or {}
    handles = [m.register_forward_pre_hook(hook_for(name, name in norms, name in hessians))
               for name, m in {**norms, **hessians}.items()]
    try:
        run_calibration(model, calibration, batch_size)
    finally:
        for h in handles:
            h.remove()
    return sq_sums, outer, max(tokens.values(), default=0)


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
