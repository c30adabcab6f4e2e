"""GgufLinear: a linear layer whose weight is stored as GGUF tensor bytes (Q4_K, Q8_0, F16, ...).

Contract with the GGUF exporter: ``ggml_type`` (str, a GGML type name), ``in_features``,
``out_features``, the uint8 buffer ``blocks`` [out_features, row_bytes] holding exactly the bytes
of the GGUF tensor (row r = output row r, i.e. llama.cpp's ne0 = in_features), and an optional
``bias`` buffer (bfloat16 in a built model). The exporter writes ``blocks`` unchanged with type
``ggml_type``.

Compute: the weight is dequantized exactly as llama.cpp reconstructs it (float32,
search.formats) and cached, outside the state, in the activation dtype: a float32 input
multiplies by the exact weight; the usual bfloat16 model multiplies by its bfloat16
rounding. Measured on demo:minilm (every linear and the embeddings in one format, 24
sentences, 1 - cosine to the float32 original): Q8_0 1.736e-4 with float32 compute vs
1.755e-4 in bfloat16, Q5_0 7.755e-3 vs 7.682e-3, Q4_0 2.925e-2 vs 2.927e-2 -- differences
of about 1% of the format's own loss, at 2.5x the speed (4.6 s vs 1.8 s for 8 x 128 tokens
on this AMX CPU). The bytes, not the compute dtype, are what must be exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from search.errors import RecipeError
from search.formats.activation_rounding import rounding_for
from search.formats.ggml_types import ggml_type as lookup_type


class GgufLinear(nn.Module):
    """y = x W^T + b with W held as GGUF blocks of type ``ggml_type``."""

    def __init__(self, ggml_type: str, in_features: int, out_features: int, *, bias: bool = False,
                 blocks: torch.Tensor | None = None, bias_values: torch.Tensor | None = None):
        super().__init__()
        t = lookup_type(ggml_type)
        self.ggml_type, self.in_features, self.out_features = t.name, in_features, out_features
        shape = (out_features, t.row_bytes(in_features))
        if blocks is None:
            blocks = torch.empty(shape, dtype=torch.uint8)
        elif tuple(blocks.shape) != shape or blocks.dtype != torch.uint8:
            raise ValueError(f"{t.name} blocks for {in_features}->{out_features} must be uint8 {shape}, "
                             f"not {blocks.dtype} {tuple(blocks.shape)}")
        self.register_buffer("blocks", blocks)
        if bias or bias_values is not None:
            values = bias_values if bias_values is not None else torch.empty(out_features, dtype=torch.bfloat16)
            self.register_buffer("bias", values)
        else:
            self.bias = None
        self.cache_dequantized = True
        self._cache: torch.Tensor | None = None

    @classmethod
    def from_weight(cls, weight: torch.Tensor, bias: torch.Tensor | None, ggml_type: str,
                    name: str = "layer") -> GgufLinear:
        """Quantize a float weight [out, in] to `ggml_type` (RecipeError naming `name` if in is not a multiple
        of the type's block)."""
        from search.compress.block_cache import encoded_rows

        out_f, in_f = weight.shape
        t = lookup_type(ggml_type)
        if in_f % t.block_size:
            raise RecipeError(f"layer {name!r} has {in_f} input features; {t.name} needs a multiple of "
                              f"{t.block_size}")
        data = encoded_rows(weight.detach().to(torch.float32).cpu().numpy(), t.name)
        blocks = torch.from_numpy(data.copy()).to(weight.device)  # the module owns its bytes
        bias_values = bias.detach().to(torch.bfloat16).clone() if bias is not None else None
        return cls(t.name, in_f, out_f, blocks=blocks, bias_values=bias_values)

    # ---- the dense weight ---------------------------------------------------
    def dense_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """W [out, in] as llama.cpp reconstructs it (float32, then cast to `dtype`)."""
        from search.formats.codec import dequantize_rows

        w = torch.from_numpy(dequantize_rows(self.blocks.cpu().numpy(), self.ggml_type))
        return w.to(device=self.blocks.device, dtype=dtype)

    def cached_weight(self, dtype: torch.dtype) -> torch.Tensor:
        """The weight in `dtype` on the blocks' device, cached after the first call (the forward pass's weight)."""
        w = self._cache
        if w is None or w.dtype != dtype or w.device != self.blocks.device:
            w = self.dense_weight(dtype)
            if self.cache_dequantized:
                self._cache = w
        return w

    @property
    def weight(self) -> torch.Tensor:
        """The exact float32 weight (recomputed: use cached_weight in loops)."""
        return self.dense_weight(torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # llama.cpp multiplies this type by activations rounded to its partner format (8-bit blocks for
        # quantized types): scoring without it rates Q8_0/Q6_K better than they run
        x = rounding_for(self.ggml_type)(x)
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        return F.linear(x, self.cached_weight(x.dtype), bias)

    # ---- the cache follows the stored bytes ---------------------------------
    def _apply(self, fn, recurse=True):
        self._cache = None
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, *args, **kwargs):
        self._cache = None
        super()._load_from_state_dict(*args, **kwargs)

    def extra_repr(self) -> str:
        return (f"ggml_type={self.ggml_type}, in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
