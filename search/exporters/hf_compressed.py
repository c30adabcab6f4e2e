"""The ``hf`` format, quantized: a compressed-tensors "pack-quantized" checkpoint transformers reads natively.

Each quantized layer keeps devicefit's exact numbers: the same integer codes, the same float16
group scales, the same zero points, so the weights transformers reconstructs are the weights
devicefit scored. How devicefit's storage maps onto compressed-tensors (signed codes, offset
2^(b-1), since compressed-tensors packs q + 2^(b-1)):

- symmetric b-bit, groups that tile the row (or one group per row): strategy "group" ("channel"),
  code q - 2^(b-1), scale s, no zero point: w = s (q - 2^(b-1)), as devicefit;
- asymmetric b-bit, or a last group that is shorter than the others: strategy "block" with
  block_structure [1, g] (one row by g columns is exactly a group; "block" pads a partial last
  block, and its zero point is stored unpacked: [rows, groups] int8 z - 2^(b-1)), so
  w = s (q - z). ("group" with a zero point would be the canonical choice, but transformers 5.24
  with compressed-tensors 0.20 cannot load a packed group zero point: its size check fails.)
- sparsity (bitmask or removed rows): the full code matrix with the codes that dequantize to 0;
- GGUF Q8_0 / Q5_0 / Q4_0 layers: symmetric 8/5/4-bit groups of 32 with the block's fp16 d as the
  scale (w = d * code exactly); the other GGUF types (K-quants, Q4_1/Q5_1's float minimum) have no
  compressed-tensors form and are refused.

Every other layer is stored dense (see hf_dense). config.json says dtype float32: transformers
creates the scales in the model's dtype, and float32 holds the float16 scales exactly (bfloat16
would round them); pass dtype=torch.bfloat16 to from_pretrained to halve the memory at that cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.errors import DeviceFitError

CT_DTYPE = "float32"
GGUF_AS_SYMMETRIC = {"Q8_0": 8, "Q5_0": 5, "Q4_0": 4}  # w = d * (code - offset): a symmetric group of 32
GGUF_DENSE = {"F32", "F16", "BF16"}


@dataclass(frozen=True)
class Scheme:
    """One compressed-tensors weight scheme (a config group)."""

    bits: int
    symmetric: bool
    strategy: str  # "group" | "channel" | "block"
    group: int  # columns per group (block width)

    def args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"num_bits": self.bits, "type": "int", "symmetric": self.symmetric,
                                "strategy": self.strategy, "dynamic": False}
        if self.strategy == "group":
            args["group_size"] = self.group
        elif self.strategy == "block":
            args["block_structure"] = [1, self.group]
        return args


@dataclass
class PackedLayer:
    scheme: Scheme
    codes: Any  # int32 [out, in], unsigned codes in [0, 2^b - 1]
    scales: Any  # float16 [out, groups]
    zeros: Any  # uint8 [out, groups] or None (symmetric)
    bias: Any


def quantized_layer(name: str, module: Any) -> PackedLayer | None:
    """The compressed-tensors form of a quantized layer; None when the module is not quantized.

    Raises DeviceFitError for a quantized format compressed-tensors cannot express.
    """
    from search.compress.modules import PackedLinear

    if isinstance(module, PackedLinear):
        return _from_packed(module) if module.bits < 16 else None
    ggml = getattr(module, "ggml_type", None)
    if ggml is None or ggml in GGUF_DENSE:
        return None
    if ggml not in GGUF_AS_SYMMETRIC:
        raise DeviceFitError(f"--format hf cannot express layer {name!r} in GGUF type {ggml} (compressed-tensors "
                             f"has no {ggml}); export with --format gguf, or use Q8_0, Q5_0 or Q4_0 for hf")
    return _from_gguf(module, GGUF_AS_SYMMETRIC[ggml])


def _scheme(bits: int, symmetric: bool, group_size: int | None, cols: int) -> Scheme:
    g = cols if group_size is None else min(group_size, cols)
    if not symmetric or cols % g:
        return Scheme(bits, symmetric, "block", g)
    return Scheme(bits, True, "channel" if g == cols else "group", g)


def _from_packed(module: Any) -> PackedLayer:
    """Full [out, in] codes of a QuantizedLinear, whatever its sparse storage (bitmask / kept rows)."""
    import torch

    from search.compress.packing import unpack_bits, unpack_mask
    from search.compress.quantize import zero_codes

    bits, cols = module.bits, module.in_features
    zeros = getattr(module, "zeros", None)
    flat = unpack_bits(module.qweight, bits, module.values_count)
    if module.fmt == "bitmask":
        codes = zero_codes(module.scales, zeros, bits, cols, module.group_size)
        codes[unpack_mask(module.mask, (module.rows, cols))] = flat
    else:
        codes = flat.view(module.rows, cols)
    scales = module.scales
    if module.fmt == "rows":  # removed output rows: codes equal to the zero point, so they dequantize to 0
        kept = unpack_mask(module.row_mask, (module.out_features,))
        full_scales = torch.ones(module.out_features, scales.shape[1], dtype=torch.float16)
        full_scales[kept] = scales
        mid = 2 ** (bits - 1)
        full_zeros = None
        if zeros is not None:
            full_zeros = torch.full((module.out_features, zeros.shape[1]), mid, dtype=torch.uint8)
            full_zeros[kept] = zeros
        full_codes = torch.full((module.out_features, cols), mid, dtype=torch.int32)
        full_codes[kept] = codes
        codes, scales, zeros = full_codes, full_scales, full_zeros
    scheme = _scheme(bits, zeros is None, module.group_size, cols)
    return PackedLayer(scheme, codes, scales.to(torch.float16), zeros, module.bias)


def _from_gguf(module: Any, bits: int) -> PackedLayer:
    """Q8_0 / Q5_0 / Q4_0: each 32-weight block starts with its fp16 d; the weight is d * signed code."""
    import torch

    out_f, in_f = module.out_features, module.in_features
    blocks = module.blocks.view(out_f, in_f // 32, -1)
    d = blocks[:, :, :2].contiguous().view(torch.float16).view(out_f, in_f // 32)
    w = module.dense_weight(torch.float32).view(out_f, in_f // 32, 32)
    d32 = d.to(torch.float32).unsqueeze(-1)
    signed = torch.where(d32 != 0, torch.round(w / torch.where(d32 != 0, d32, 1.0)), 0.0)
    codes = (signed.to(torch.int32) + 2 ** (bits - 1)).view(out_f, in_f)
    return PackedLayer(Scheme(bits, True, "group", 32), codes, d, None, module.bias)


def ct_tensors(name: str, layer: PackedLayer) -> dict[str, Any]:
    """The checkpoint tensors compressed-tensors reads for one layer (weight_packed, weight_scale, ...)."""
    import torch
    from compressed_tensors.compressors.pack_quantized.helpers import pack_to_int32

    bits, offset = layer.scheme.bits, 2 ** (layer.scheme.bits - 1)
    tensors = {
        f"{name}.weight_packed": pack_to_int32((layer.codes - offset).to(torch.int8), bits),
        f"{name}.weight_scale": layer.scales.contiguous(),
        f"{name}.weight_shape": torch.tensor(list(layer.codes.shape), dtype=torch.int64),
    }
    if layer.zeros is not None:  # "block" keeps the zero point unpacked
        tensors[f"{name}.weight_zero_point"] = (layer.zeros.to(torch.int32) - offset).to(torch.int8).contiguous()
    if layer.bias is not None:
        tensors[f"{name}.bias"] = layer.bias.detach().to(torch.bfloat16).contiguous()
    return tensors


def quantization_config(groups: dict[Scheme, list[str]]) -> dict[str, Any]:
    """config.json's quantization_config (validated by compressed-tensors' own schema)."""
    from compressed_tensors.quantization import QuantizationConfig

    config = QuantizationConfig.model_validate({
        "config_groups": {f"group_{i}": {"targets": names, "weights": scheme.args()}
                          for i, (scheme, names) in enumerate(groups.items())},
        "format": "pack-quantized", "quantization_status": "compressed", "ignore": []})
    return {**config.model_dump(mode="json"), "quant_method": "compressed-tensors"}


def require_compressed_tensors() -> None:
    try:
        import compressed_tensors  # noqa: F401
    except ModuleNotFoundError:
        raise DeviceFitError("--format hf of a quantized candidate needs the compressed-tensors package: "
                             "pip install compressed-tensors (or export with --format devicefit)") from None


def write_hf_compressed(loaded: Any, compressed: Any, recipe: Any, out_dir: Any,
                        layers: dict[str, PackedLayer], notes: list[str],
                        extra_files: dict[str, str] | None = None) -> Path:
    """Write the directory: dense tensors from a standard model of the real shapes, quantized layers packed."""
    import torch
    from safetensors.torch import save_file

    from search.exporters.hf_dense import is_hf_export, standard_model, write_side_files
    from search.exporters.staging import staged_directory

    require_compressed_tensors()
    model = standard_model(loaded, compressed)  # validates the config against every dense shape
    state = _unique(model.state_dict())
    groups: dict[Scheme, list[str]] = {}
    for name, layer in layers.items():
        for key in (f"{name}.weight", f"{name}.bias"):
            state.pop(key, None)
        state.update(ct_tensors(name, layer))
        groups.setdefault(layer.scheme, []).append(name)
    for name, module in compressed.named_modules():  # GGUF float layers: their exact values, not bf16-rounded
        if getattr(module, "ggml_type", None) in GGUF_DENSE and f"{name}.weight" in state:
            weight = module.dense_weight(torch.float32)
            if type(model.get_submodule(name)).__name__ == "Conv1D":  # GPT-2 stores [in, out]
                weight = weight.t()
            state[f"{name}.weight"] = weight.contiguous()
    config = model.config
    config.dtype = CT_DTYPE
    if groups:
        config.quantization_config = quantization_config(groups)
    with staged_directory(out_dir, is_hf_export) as tmp:
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        config.to_json_file(str(tmp / "config.json"), use_diff=False)
        if model.can_generate():
            model.generation_config.save_pretrained(str(tmp))
        write_side_files(loaded, recipe, tmp, "hf", notes, extra_files)
    return Path(out_dir).expanduser().resolve()


def _unique(state: dict[str, Any]) -> dict[str, Any]:
    """safetensors refuses shared storage: a tied head is dropped (transformers ties it again on load)."""
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    out = {}
    for name, t in state.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if key in seen:
            continue
        seen.add(key)
        out[name] = t.detach().contiguous()
    return out

