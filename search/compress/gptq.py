"""GPTQ: rounding a layer's weights column by column, each rounding error compensated by the columns after it.

Frantar, Ashkboos, Hoefler, Alistarh 2022, "GPTQ: Accurate Post-Training Quantization for
Generative Pre-trained Transformers". With X the layer's inputs on the calibration rows,
H = 2 X^T X (here the plain sum X^T X: a common factor changes nothing) is dampened by 1% of
its mean diagonal; the upper Cholesky factor U of H^-1 drives the update. Column j is rounded
to q_j, and the not-yet-rounded columns absorb err = (w_j - q_j) / U_jj times row j of U, which
minimises ||X W^T - X Q^T|| greedily. Updates inside a block of columns are applied at once to
the rest of the matrix ("lazy batch" updates, blocks of 128 columns or whole groups).

The storage format is a parameter: ``fit_group`` fixes a group's grid (weight = scale * code +
offset, codes in [qmin, qmax]) from the group's weights when GPTQ reaches its first column, so
the chosen codes are exactly representable in that format (devicefit's groups, a GGUF block).
With act-order, columns go in decreasing order of H's diagonal and every group's grid is fixed
up front from the original weights ("static groups"), since a group's columns are then visited
out of order. A keep mask (sparsity) pins the pruned weights to code 0 (value exactly 0; grids
used with a mask have no offset); their error is still passed on to the kept columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

DAMPING = 0.01  # fraction of the mean diagonal added to H (the paper's 1%)
BLOCK_COLUMNS = 128


@dataclass
class GroupGrid:
    """One group's grid over its columns: weight = scale * code (+ offset), code in [qmin, qmax]."""

    scale: torch.Tensor  # float32 [rows, width]
    offset: torch.Tensor | None  # float32 [rows, width]
    qmin: torch.Tensor | int  # int or float32 [rows]
    qmax: torch.Tensor | int
    params: Any = None  # what the format needs to store the group (its block parameters)

    def __post_init__(self) -> None:
        # a zero scale (an all-zero block) reconstructs every code as the offset: any code in range will do
        self._divisor = torch.where(self.scale != 0, self.scale, torch.ones_like(self.scale))

    def nearest(self, w: torch.Tensor, k: int) -> torch.Tensor:
        """float32 codes [rows] of column k of the group closest to w [rows]."""
        t = w - self.offset[:, k] if self.offset is not None else w
        return torch.clamp(torch.round(t / self._divisor[:, k]), self.qmin, self.qmax)

    def value(self, q: torch.Tensor, k: int) -> torch.Tensor:
        v = self.scale[:, k] * q
        return v + self.offset[:, k] if self.offset is not None else v


FitGroup = Callable[[torch.Tensor], GroupGrid]  # float32 [rows, width] -> its grid


@dataclass
class GptqResult:
    codes: torch.Tensor  # int32 [rows, cols], grid codes
    grids: list[GroupGrid]  # one per group of `group_size` input columns, in column order


def gptq(weight: torch.Tensor, hessian: torch.Tensor, group_size: int | None, fit_group: FitGroup, *,
         act_order: bool = False, keep: torch.Tensor | None = None, damping: float = DAMPING) -> GptqResult:
    """GPTQ codes of weight [rows, cols] for inputs with summed X^T X `hessian` [cols, cols].

    Groups are `group_size` consecutive input columns (None: the whole row); the last may be shorter.
    """
    rows, cols = weight.shape
    g = cols if group_size is None or group_size >= cols else group_size
    n_groups = -(-cols // g)
    w = weight.detach().to(torch.float32).clone()
    if keep is not None:
        w = w * keep
    h = hessian.detach().to(device=w.device, dtype=torch.float32).clone()  # float32 as in the paper's code
    dead = torch.diagonal(h) <= 0  # inputs that were always 0: no information, plain rounding
    h[dead, dead] = 1.0
    static = act_order or n_groups == 1
    grids: list[GroupGrid | None] = [None] * n_groups
    if static:
        for i in range(n_groups):
            grids[i] = fit_group(_masked(w[:, i * g:(i + 1) * g], keep, i * g))
    order = (torch.argsort(torch.diagonal(h), descending=True, stable=True) if act_order
             else torch.arange(cols, device=h.device))
    w, h = w[:, order], h[order][:, order]
    keep_p = keep[:, order] if keep is not None else None
    u = _inverse_cholesky(h, damping)
    codes = torch.zeros(rows, cols, dtype=torch.float32, device=w.device)
    columns = order.tolist()
    block = BLOCK_COLUMNS if static else g * max(1, BLOCK_COLUMNS // g)  # whole groups in a block
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        w1, err1, u1 = w[:, i1:i2].clone(), torch.zeros(rows, i2 - i1, device=w.device), u[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = columns[i1 + i]
            group, k = divmod(col, g)
            if not static and k == 0:  # the group is the next columns of this block, already updated
                grids[group] = fit_group(_masked(w1[:, i:i + g], keep_p, i1 + i))
            grid = grids[group]
            q = grid.nearest(w1[:, i], k)
            if keep_p is not None:
                q = q * keep_p[:, i1 + i]  # pruned: code 0, value exactly 0
            codes[:, i1 + i] = q
            err = (w1[:, i] - grid.value(q, k)) / u1[i, i]
            w1[:, i:].addr_(err, u1[i, i:], alpha=-1.0)
            err1[:, i] = err
        w[:, i2:] -= err1 @ u[i1:i2, i2:]
    unpermuted = torch.empty_like(codes)
    unpermuted[:, order] = codes
    return GptqResult(codes=unpermuted.to(torch.int32), grids=grids)


def _masked(w: torch.Tensor, keep: torch.Tensor | None, start: int) -> torch.Tensor:
    """The group's weights with pruned entries at 0 (as they will be stored), for fitting its grid."""
    return w if keep is None else w * keep[:, start:start + w.shape[1]]


def _inverse_cholesky(h: torch.Tensor, damping: float) -> torch.Tensor:
    """Upper Cholesky factor of (H + damping * mean diag * I)^-1, more damping if H is too ill-conditioned."""
    eye = torch.eye(h.shape[0], dtype=h.dtype, device=h.device)
    mean_diag = torch.diagonal(h).mean()
    for attempt in range(6):
        factor, info = torch.linalg.cholesky_ex(h + eye * (damping * 10**attempt * mean_diag))
        if int(info) == 0:
            inverse = torch.cholesky_inverse(factor)
            upper, info = torch.linalg.cholesky_ex(inverse, upper=True)
            if int(info) == 0:
                return upper
    raise ArithmeticError("GPTQ: the layer's input Hessian stays singular after damping")
