"""Compressed linear modules with real packed storage.

PackedLinear keeps exactly the tensors that search.memory's StoragePlan lists
(packed codes, float16 scales, uint8 zero points, bitmasks, bfloat16 values and
bias) as buffers, so state_dict() / safetensors hold the compressed bytes. The
forward pass rebuilds the dense weight in the activation dtype (cached after the
first call, outside the state) and runs F.linear: compute may dequantize, storage
does not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from search.compress.gguf_linear import GgufLinear
from search.compress.packing import unpack_bits, unpack_mask
from search.compress.quantize import dequantize_groups, zero_codes
from search.memory import StoragePlan

_DTYPES = {"uint8": torch.uint8, "float16": torch.float16, "bfloat16": torch.bfloat16}


class PackedLinear(nn.Module):
    """y = x W^T + b with W held in a packed storage format (see StoragePlan.fmt)."""

    def __init__(self, plan: StoragePlan, tensors: dict[str, torch.Tensor] | None = None):
        super().__init__()
        self.in_features, self.out_features = plan.in_features, plan.out_features
        self.bits, self.group_size, self.symmetric = plan.bits, plan.group_size, plan.symmetric
        self.fmt, self.rows, self.values_count = plan.fmt, plan.rows, plan.values
        self.cache_dequantized = True
        self._cache: torch.Tensor | None = None
        for spec in plan.tensors():
            t = tensors[spec.name] if tensors is not None else torch.empty(spec.shape, dtype=_DTYPES[spec.dtype])
            self.register_buffer(spec.name, t)
        if not plan.bias:
            self.bias = None

    @staticmethod
    def build(plan: StoragePlan, tensors: dict[str, torch.Tensor] | None = None) -> PackedLinear:
        """The module for a plan: QuantizedLinear for b < 16 bits, SparseLinear for 16-bit sparse storage."""
        cls = QuantizedLinear if plan.quantized else SparseLinear
        return cls(plan, tensors)

    # ---- the dense weight ---------------------------------------------------
    def dense_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """W [out, in] rebuilt from the packed buffers."""
        mask = unpack_mask(self.mask, (self.rows, self.in_features)) if self.fmt == "bitmask" else None
        if self.bits < 16:
            flat = unpack_bits(self.qweight, self.bits, self.values_count)
            if mask is not None:
                codes = zero_codes(self.scales, getattr(self, "zeros", None), self.bits, self.in_features,
                                   self.group_size)
                codes[mask] = flat
            else:
                codes = flat.view(self.rows, self.in_features)
            w = dequantize_groups(codes, self.scales, getattr(self, "zeros", None), self.bits, self.group_size, dtype)
        elif mask is not None:
            w = torch.zeros(self.rows, self.in_features, dtype=dtype, device=self.values.device)
            w[mask] = self.values.to(dtype)
        else:
            w = self.values.to(dtype)
        if self.fmt == "rows":
            full = torch.zeros(self.out_features, self.in_features, dtype=dtype, device=w.device)
            full[unpack_mask(self.row_mask, (self.out_features,))] = w
            w = full
        return w

    @property
    def weight(self) -> torch.Tensor:
        return self.dense_weight(torch.bfloat16)

    def cached_weight(self, dtype: torch.dtype) -> torch.Tensor:
        """The dense weight in `dtype` on the storage's device, cached after the first call (the forward
        pass's weight; an embedding lookup through this table reads it too)."""
        w = self._cache
        device = next(self.buffers()).device
        if w is None or w.dtype != dtype or w.device != device:
            w = self.dense_weight(dtype).to(device)
            if self.cache_dequantized:
                self._cache = w
        return w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.cached_weight(x.dtype)
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        return F.linear(x, w, bias)

    # ---- keep the storage formats through .to()/.half()/load ----------------
    def _apply(self, fn, recurse=True):
        scales = self._buffers.get("scales")
        super()._apply(fn, recurse)
        if scales is not None and self._buffers["scales"].dtype != torch.float16:
            # model.to(bfloat16) must not re-encode the float16 scales: only follow the device move
            self._buffers["scales"] = scales.to(self._buffers["scales"].device)
        self._cache = None
        return self

    def _load_from_state_dict(self, *args, **kwargs):
        self._cache = None
        super()._load_from_state_dict(*args, **kwargs)

    def extra_repr(self) -> str:
        quant = f"bits={self.bits}, group_size={self.group_size}, symmetric={self.symmetric}, " if self.bits < 16 else ""
        return (f"in_features={self.in_features}, out_features={self.out_features}, {quant}"
                f"format={self.fmt}, bias={self.bias is not None}")


class QuantizedLinear(PackedLinear):
    """b-bit codes (bitstream) + float16 group scales + uint8 zero points (asymmetric), maybe sparse."""


class SparseLinear(PackedLinear):
    """16-bit (bfloat16) values kept under a bitmask, or only the kept output rows."""


class LowRankLinear(nn.Module):
    """y = b(a(x)): a maps in -> rank (no bias), b maps rank -> out (the original bias)."""

    def __init__(self, a: nn.Module, b: nn.Module):
        super().__init__()
        self.a, self.b = a, b

    @property
    def in_features(self) -> int:
        return self.a.in_features

    @property
    def out_features(self) -> int:
        return self.b.out_features

    @property
    def rank(self) -> int:
        return self.a.out_features

    @property
    def weight(self) -> torch.Tensor:
        return self.b.weight.to(torch.float32) @ self.a.weight.to(torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


def plain_linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    """An nn.Linear holding these tensors (no random initialisation)."""
    out_f, in_f = weight.shape
    layer = nn.Linear(in_f, out_f, bias=bias is not None, device="meta")
    layer.weight = nn.Parameter(weight.detach().clone())
    if bias is not None:
        layer.bias = nn.Parameter(bias.detach().clone())
    return layer


def conv1d_to_linear(module: nn.Module) -> nn.Linear:
    """GPT-2's Conv1D stores its weight [in, out]; the same map as an nn.Linear ([out, in])."""
    return plain_linear(module.weight.detach().t().contiguous(), module.bias)


def module_from_plan(plan: StoragePlan) -> nn.Module:
    """The module a storage plan describes, with uninitialised tensors (to load a saved state into)."""
    if plan.fmt == "gguf":
        return GgufLinear(plan.ggml_type, plan.in_features, plan.out_features, bias=plan.bias)
    if plan.fmt == "plain":
        bias = torch.empty(plan.out_features, dtype=torch.bfloat16) if plan.bias else None
        return plain_linear(torch.empty(plan.out_features, plan.in_features, dtype=torch.bfloat16), bias)
    return PackedLinear.build(plan)
