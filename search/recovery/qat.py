"""Quantization-aware training of a compressed model, and re-packing into real storage.

``make_trainable(model)`` swaps every packed layer (search.compress.modules) for a
float32 training twin, in place:
- QuantizedLinear -> FakeQuantLinear: master weights start at the dequantized values,
  scales and zero points at the stored ones, so the first forward equals the packed
  model; weights and/or scales then learn through the straight-through estimator;
- SparseLinear -> MaskedLinear: the kept values train, pruned ones stay zero;
- low-rank factors (LowRankLinear.a / .b, themselves plain, sparse or quantized) train
  the same way, since they are just two of these layers;
and casts everything else to float32 so the optimizer's small updates are not lost to
bfloat16 rounding. ``pack_trained(model)`` writes the trained values back into the
original packed buffers (codes re-packed into the bitstream, float16 scales, the same
masks) and casts the model to bfloat16, so export writes the recovered weights.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from search.compress.compose import cast_storage
from search.compress.modules import PackedLinear
from search.compress.packing import pack_bits, unpack_mask
from search.compress.quantize import round_up_fp16
from search.recovery.fake_quant import FakeQuantLinear


def _masks(packed: PackedLinear) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(element mask over the stored rows or None, row mask over all outputs or None)."""
    elements = unpack_mask(packed.mask, (packed.rows, packed.in_features)) if packed.fmt == "bitmask" else None
    rows = unpack_mask(packed.row_mask, (packed.out_features,)) if packed.fmt == "rows" else None
    return elements, rows


def _full_mask(packed: PackedLinear) -> torch.Tensor | None:
    """Which entries of the full [out, in] weight exist in storage (None: all)."""
    elements, rows = _masks(packed)
    if rows is not None:
        return rows.unsqueeze(1).expand(packed.out_features, packed.in_features).clone()
    return elements


def _scatter_rows(stored: torch.Tensor, rows: torch.Tensor | None, fill: float) -> torch.Tensor:
    """Per-stored-row tensor [rows, k] -> per-output tensor [out, k] (pruned rows get ``fill``)."""
    if rows is None:
        return stored
    full = torch.full((rows.numel(), stored.shape[1]), fill, dtype=stored.dtype)
    full[rows] = stored
    return full


class MaskedLinear(nn.Module):
    """A 16-bit sparse layer in training: float32 weights, pruned entries held at zero."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, mask: torch.Tensor | None):
        super().__init__()
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        self.weight = nn.Parameter(weight.detach().float().clone())
        self.register_buffer("mask", None if mask is None else mask.clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().float().clone())

    def masked_weight(self) -> torch.Tensor:
        return self.weight if self.mask is None else self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, self.masked_weight().to(x.dtype), b)


def trainable_twin(packed: PackedLinear, learn: str = "both") -> nn.Module:
    """The float32 training form of one packed layer (remembers the packed original)."""
    weight = packed.dense_weight(torch.float32)
    bias = packed.bias
    mask = _full_mask(packed)
    if packed.bits < 16:
        _, rows = _masks(packed)
        scale = _scatter_rows(packed.scales.float(), rows, 1.0)
        zeros = getattr(packed, "zeros", None)
        zero = (torch.full_like(scale, 2 ** (packed.bits - 1)) if zeros is None
                else _scatter_rows(zeros.float(), rows, 0.0))
        twin: nn.Module = FakeQuantLinear(weight, bias, packed.bits, packed.group_size, packed.symmetric,
                                          scale=scale, zero=zero, learn=learn, mask=mask)
    else:
        twin = MaskedLinear(weight, bias, mask)
    object.__setattr__(twin, "packed_original", packed)  # not a submodule: stays out of state_dict
    return twin


def repack(twin: nn.Module) -> PackedLinear:
    """A copy of the packed original holding the twin's trained values in the same storage format."""
    packed: PackedLinear = twin.packed_original
    new = copy.deepcopy(packed)
    elements, rows = _masks(packed)
    keep_rows = rows if rows is not None else slice(None)
    with torch.no_grad():
        if isinstance(twin, FakeQuantLinear):
            scales16 = round_up_fp16(twin.scale.detach().clamp_min(1e-8))
            codes = twin.codes(scale=scales16.float())[keep_rows]
            new.qweight = pack_bits(codes[elements] if elements is not None else codes, packed.bits)
            new.scales = scales16[keep_rows].contiguous()
            # zero points are fixed integers during QAT; the stored ones stay valid
        else:
            values = twin.masked_weight().detach()[keep_rows]
            new.values = (values[elements] if elements is not None else values).to(torch.bfloat16).contiguous()
        if twin.bias is not None:
            new.bias = twin.bias.detach().to(packed.bias.dtype).clone()
    new._cache = None
    return new


def _replace(model: nn.Module, convert) -> int:
    """Replace every child module for which convert() returns a module; returns how many."""
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            new = convert(child)
            if new is not None:
                setattr(parent, name, new)
                count += 1
    return count


def make_trainable(model: nn.Module, learn: str = "both") -> nn.Module:
    """Swap packed layers for trainable twins and cast the rest to float32 (in place; returns model)."""
    _replace(model, lambda m: trainable_twin(m, learn) if isinstance(m, PackedLinear) else None)
    model.float()
    for p in model.parameters():
        p.requires_grad_(True)
    for m in model.modules():
        if isinstance(m, FakeQuantLinear):
            m.weight.requires_grad_(learn != "scales")
            m.log_scale.requires_grad_(learn != "weights")
    return model


def pack_trained(model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> nn.Module:
    """Write trained twins back into packed storage and cast to the storage dtype (in place; returns model)."""
    _replace(model, lambda m: repack(m) if hasattr(m, "packed_original") else None)
    cast_storage(model, dtype)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def trainable_summary(model: nn.Module) -> dict[str, int]:
    """How many layers of each training kind the model holds (for reports and tests)."""
    kinds = {"fake_quant": 0, "masked": 0}
    for m in model.modules():
        kinds["fake_quant"] += isinstance(m, FakeQuantLinear)
        kinds["masked"] += isinstance(m, MaskedLinear)
    return kinds


