"""llama.cpp rounds a matmul's activations to the weight type's partner format; this reproduces that in torch.

Fact from ggml's CPU backend (each weight type's ``vec_dot_type``): a Q4_0, Q4_1,
Q5_0, Q5_1 or Q8_0 weight multiplies activations quantized to 8 bits in blocks of
32 with a float16 scale (Q8_0 / Q8_1); a K-quant weight (Q2_K ... Q6_K)
multiplies activations quantized to 8 bits in blocks of 256 with a float32 scale
(Q8_K); F16 and BF16 weights multiply activations rounded to F16 / BF16.

Measured here (tests/runtimes): for 4-bit weights this rounding is noise next to
the weights' own error (KL +0.2..1.5%), but for Q8_0 and Q6_K it is of the same
order (KL +70% and +17% on a random Llama), so a torch model with the exact GGUF
weights scores those types better than llama.cpp runs them unless the activations
are rounded too. ``GgufLinear`` (search/compress/gguf_linear.py) therefore rounds
its input with ``rounding_for(its type)`` in every forward: the search scores a GGUF
layer as llama.cpp runs it. ``round_linear_inputs`` does the same for plain linears
(tests that compare llama.cpp with a dense twin).
"""

from __future__ import annotations

from typing import Any

# weight type -> (activation block size, scale stored as float16?) ; None = rounded to a float type
_Q8_PARTNER = {"Q4_0": (32, True), "Q4_1": (32, True), "Q5_0": (32, True), "Q5_1": (32, True),
               "Q8_0": (32, True), "Q2_K": (256, False), "Q3_K": (256, False), "Q4_K": (256, False),
               "Q5_K": (256, False), "Q6_K": (256, False)}


def round_to_q8(x: Any, block: int, fp16_scale: bool) -> Any:
    """x as ggml's 8-bit activation blocks hold it: codes round(x * 127 / max|x|) per block (float32 scale),
    values codes * d with d = max|x| / 127 stored as float16 (Q8_0) or float32 (Q8_K)."""
    import torch

    shape, dtype = x.shape, x.dtype
    xb = x.float().reshape(-1, block)
    amax = xb.abs().amax(-1, keepdim=True)
    inverse = torch.where(amax > 0, 127.0 / torch.where(amax > 0, amax, torch.ones_like(amax)), torch.zeros_like(amax))
    codes = torch.round(xb * inverse).clamp(-127, 127)
    d = amax / 127
    if fp16_scale:
        d = d.half().float()
    return (codes * d).reshape(shape).to(dtype)


def rounding_for(ggml_type: str) -> Any:
    """The function llama.cpp applies to the activations multiplied by a weight of ``ggml_type``."""
    import torch

    if ggml_type in _Q8_PARTNER:
        block, fp16 = _Q8_PARTNER[ggml_type]
        return lambda x: round_to_q8(x, block, fp16)
    if ggml_type in ("F16", "BF16"):
        target = torch.float16 if ggml_type == "F16" else torch.bfloat16
        return lambda x: x.to(target).to(x.dtype)
    return lambda x: x


def round_linear_inputs(model: Any, ggml_type: str) -> list[Any]:
    """Hook every nn.Linear of ``model`` so its input is rounded as llama.cpp rounds activations for
    ``ggml_type`` weights; returns the hook handles."""
    import torch

    fn = rounding_for(ggml_type)
    return [m.register_forward_pre_hook(lambda mod, args: (fn(args[0]), *args[1:]))
            for m in model.modules() if isinstance(m, torch.nn.Linear)]
