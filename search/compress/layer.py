"""The working form of one linear layer while the layer transforms run on it.

Weights stay float32 and in Linear layout ([out, in]) until the final storage
step, so every transform (low-rank, sparsity, quantization) sees full precision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class WorkLayer:
    weight: torch.Tensor  # float32 [out, in]
    bias: torch.Tensor | None  # float32 [out]
    in_sq_norm: torch.Tensor | None = None  # sum over calibration tokens of x_j^2, per input channel (Wanda)
    in_hessian: torch.Tensor | None = None  # float32 [in, in]: sum over calibration tokens of x x^T (GPTQ)
    in_tokens: int = 0  # calibration tokens the statistics were summed over
    keep: torch.Tensor | None = None  # bool [out, in]: element mask (unstructured / 2:4)
    keep_rows: torch.Tensor | None = None  # bool [out]: channel sparsity
    notes: dict = field(default_factory=dict)

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    @classmethod
    def of(cls, module: torch.nn.Module) -> WorkLayer:
        bias = module.bias.detach().to(torch.float32) if module.bias is not None else None
        return cls(weight=module.weight.detach().to(torch.float32), bias=bias)
