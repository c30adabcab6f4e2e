"""The last layer transform: quantize (or keep at 16 bits) and store in the packed format.

The format (plain / dense / bitmask / rows / gguf) is the storage decision of
search.memory.plan_storage; the tensors themselves are produced here from the
layer's data (codes packed, masks packed, GGUF blocks encoded), so the memory test
is a real check. A setting that names a GGUF format gives a GgufLinear holding that
format's bytes (BF16: a plain bf16 layer, which is the same thing).

Method "gptq" chooses the codes with GPTQ on the layer's calibration Hessian
(search.compress.gptq_formats) in the same storage format; sparsity then stays exact:
pruned weights keep the code of 0 (the mask is fixed before GPTQ runs) and GPTQ
compensates their error in the kept weights.
"""

from __future__ import annotations

import torch
from torch import nn

from search.compress.gguf_linear import GgufLinear
from search.compress.gptq_formats import gptq_blocks, gptq_quantized
from search.compress.layer import WorkLayer
from search.compress.modules import PackedLinear, plain_linear
from search.compress.packing import pack_bits, pack_mask
from search.compress.quantize import quantize_groups
from search.compress.registry import layer_transform
from search.errors import RecipeError
from search.memory import format_problem, plan_storage
from search.recipe import LayerCompression


@layer_transform("quantize")
def store(layer: WorkLayer, setting: LayerCompression) -> nn.Module:
    """nn.Linear (bf16) when nothing applies, else a QuantizedLinear / SparseLinear with real packed buffers."""
    if setting.format is not None:
        return store_in_format(layer, setting)
    factor_setting = setting.model_copy(update={"rank": None})
    plan = plan_storage(layer.in_features, layer.out_features, layer.bias is not None, factor_setting)
    bias = layer.bias.to(torch.bfloat16) if layer.bias is not None else None
    if plan.fmt == "plain":
        return plain_linear(layer.weight.to(torch.bfloat16), bias)
    weight = layer.weight
    tensors: dict[str, torch.Tensor] = {}
    if plan.fmt == "rows":
        weight = weight[layer.keep_rows]
        tensors["row_mask"] = pack_mask(layer.keep_rows)
    if plan.fmt == "bitmask":
        tensors["mask"] = pack_mask(layer.keep)
    if setting.quantized and setting.method == "gptq":
        # the element mask (unstructured / 2:4) is kept exact; channel sparsity already removed its rows
        q = gptq_quantized(weight, _hessian(layer), setting.bits, setting.group_size, setting.symmetric,
                           act_order=setting.act_order, keep=layer.keep)
    elif setting.quantized:
        q = quantize_groups(weight, setting.bits, setting.group_size, setting.symmetric)
    if setting.quantized:
        codes = q.codes[layer.keep] if plan.fmt == "bitmask" else q.codes
        tensors["qweight"] = pack_bits(codes, setting.bits)
        tensors["scales"] = q.scales
        if q.zeros is not None:
            tensors["zeros"] = q.zeros
    else:
        values = weight[layer.keep] if plan.fmt == "bitmask" else weight
        tensors["values"] = values.to(torch.bfloat16).contiguous()
    if bias is not None:
        tensors["bias"] = bias
    return PackedLinear.build(plan, tensors)


def store_in_format(layer: WorkLayer, setting: LayerCompression, name: str = "layer") -> nn.Module:
    """The layer in its GGUF format: GgufLinear with the encoded blocks (BF16: a plain bf16 nn.Linear)."""
    problem = format_problem(layer.in_features, setting)
    if problem is None and (layer.keep is not None or layer.keep_rows is not None):
        problem = f"format {setting.format} stores a dense weight: it cannot keep a sparsity mask"
    if problem is not None:
        raise RecipeError(f"layer {name!r}: {problem}")
    if setting.format == "BF16":
        bias = layer.bias.to(torch.bfloat16) if layer.bias is not None else None
        return plain_linear(layer.weight.to(torch.bfloat16), bias)
    if setting.quantized and setting.method == "gptq":
        blocks = gptq_blocks(layer.weight, _hessian(layer), setting.format,
                             act_order=setting.act_order)
        bias = layer.bias.detach().to(torch.bfloat16).clone() if layer.bias is not None else None
        return GgufLinear(setting.format, layer.in_features, layer.out_features,
                          blocks=torch.from_numpy(blocks).to(layer.weight.device), bias_values=bias)
    return GgufLinear.from_weight(layer.weight, layer.bias, setting.format, name)


def _hessian(layer: WorkLayer) -> torch.Tensor:
    """The layer's summed X^T X for GPTQ, or a RecipeError when no calibration data was given."""
    if layer.in_hessian is None:
        raise RecipeError("method 'gptq' needs calibration data (the layers' inputs on calibration rows): "
                          "build the model through search.evaluation.compress with a DataPolicy, or pass "
                          "calibration token rows to apply()")
    return layer.in_hessian
