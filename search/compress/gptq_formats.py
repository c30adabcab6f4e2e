"""GPTQ into a storage format: devicefit's own groups (search.compress.quantize) or a GGUF block type.

Each format supplies the grid of a group of input columns, fitted by that format's own
encoder to the group's (error-updated) weights, and turns GPTQ's codes back into its stored
form. The result is bytes / codes of exactly that format: a GGUF layer's blocks dequantize
to the weights GPTQ chose, bit for bit, so GGUF export parity is unchanged.
"""

from __future__ import annotations

import numpy as np
import torch

from search.compress.gptq import GroupGrid, gptq
from search.compress.quantize import Quantized, quantize_groups
from search.formats.code_grid import fit_grid, pack_codes
from search.formats.ggml_types import ggml_type


def gptq_quantized(weight: torch.Tensor, hessian: torch.Tensor, bits: int, group_size: int | None,
                   symmetric: bool, *, act_order: bool = False, keep: torch.Tensor | None = None) -> Quantized:
    """GPTQ in devicefit's group-wise format: the same Quantized (codes, fp16 scales, zero points)
    quantize_groups gives, with every group's scale and zero point fitted when GPTQ reaches it."""
    half = 2 ** (bits - 1)

    def fit(w: torch.Tensor) -> GroupGrid:
        q = quantize_groups(w, bits, None, symmetric)  # one group per row of these columns
        scale = q.scales.to(torch.float32).expand(-1, w.shape[1])
        if symmetric:
            return GroupGrid(scale, None, -half, half - 1, params=q)
        zero = q.zeros.to(torch.float32).squeeze(1)  # stored code z means 0: grid code = stored code - z
        return GroupGrid(scale, None, -zero, (2**bits - 1) - zero, params=q)

    result = gptq(weight, hessian, group_size, fit, act_order=act_order, keep=keep)
    scales = torch.cat([grid.params.scales for grid in result.grids], dim=1)
    g = weight.shape[1] if group_size is None else min(group_size, weight.shape[1])
    if symmetric:
        return Quantized(codes=result.codes + half, scales=scales, zeros=None)
    zeros = torch.cat([grid.params.zeros for grid in result.grids], dim=1)
    per_column = zeros.to(torch.int32).repeat_interleave(g, dim=1)[:, :weight.shape[1]]
    return Quantized(codes=result.codes + per_column, scales=scales, zeros=zeros)


def gptq_blocks(weight: torch.Tensor, hessian: torch.Tensor, type_name: str, *,
                act_order: bool = False) -> np.ndarray:
    """GPTQ in a GGUF block type: uint8 [rows, row_bytes], the tensor's bytes (cols a multiple of the block)."""
    t = ggml_type(type_name)

    def fit(w: torch.Tensor) -> GroupGrid:
        grid = fit_grid(w.detach().cpu().numpy(), t.name)  # one block per row
        offset = torch.from_numpy(grid.offset).to(w.device) if grid.offset is not None else None
        return GroupGrid(torch.from_numpy(grid.scale).to(w.device), offset, grid.qmin, grid.qmax, params=grid)

    result = gptq(weight, hessian, t.block_size, fit, act_order=act_order)
    codes = result.codes.cpu().numpy()
    parts = [pack_codes(grid.params, codes[:, i * t.block_size:(i + 1) * t.block_size])
             for i, grid in enumerate(result.grids)]
    return np.ascontiguousarray(np.concatenate(parts, axis=1))
