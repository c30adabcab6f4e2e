"""write_gguf(model, tokenizer, recipe, path): one GGUF file that llama.cpp loads and runs (Llama, Mistral,
Qwen2, Qwen3, Phi-3, Gemma 2, Gemma 3, BERT, GPT-2).

Which bytes each tensor gets:
- a GGUF-packed module (``ggml_type`` + uint8 ``blocks`` [rows, row bytes], e.g.
  search.compress.gguf_linear.GgufLinear): its bytes, unchanged, with its type -
  so the file is exactly the model that was scored;
- any other linear / embedding weight: dense, in ``dense_type`` ("auto": BF16 for
  bfloat16 weights, F16 otherwise), or quantized by the ``gguf`` package when
  ``weight_type`` names a type it can quantize (Q8_0, Q5_1, Q5_0, Q4_1, Q4_0);
- 1-D tensors (norms, biases), BERT's position and token-type tables: F32, as
  llama.cpp expects them.

The hyper-parameters come from the model's real shapes (search.runtimes.gguf_names),
the source model and the recipe go into ``devicefit.*`` keys, and the file is
written next to its destination and renamed into place (never half-written).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.errors import ModelError
from search.runtimes.gguf_gemma import check_gemma, is_gemma, stored_norm_weight
from search.runtimes.gguf_names import (
    GgufFamily,
    Shapes,
    arch_name,
    gguf_family,
    gguf_family_for,
    gguf_tensor_name,
    measure_shapes,
    pair_rotary_rows,
    tensor_name_map,
    write_architecture,
)
from search.runtimes.gguf_tokenizer import write_tokenizer

if TYPE_CHECKING:
    import numpy as np

    from search.recipe import CompressionConfig

SOURCE_KEY = "devicefit.source"  # the model reference a GGUF was made from (what evaluate scores against)
RECIPE_KEY = "devicefit.recipe"
POLICY_KEY = "devicefit.data_policy"  # how the candidate was scored (DataPolicy.record() as JSON)
TOKENIZER_KEY = "devicefit.tokenizer"
PACKAGE_QUANTIZED = ("Q8_0", "Q5_1", "Q5_0", "Q4_1", "Q4_0")  # what gguf.quants.quantize implements
FLOAT_TYPES = ("F32", "F16", "BF16")
F32_TABLES = ("embeddings.position_embeddings", "embeddings.token_type_embeddings", "transformer.wpe")


@dataclass
class GgufTensor:
    name: str  # GGUF name
    type: str  # GGML type name
    data: Any  # numpy array: float32/float16, or uint8 raw bytes [rows, row bytes]


def write_gguf(model: Any, tokenizer: Any = None, recipe: CompressionConfig | None = None,
               path: str | os.PathLike = "model.gguf", *, source: str | None = None, policy: Any = None,
               dense_type: str = "auto", weight_type: str | None = None) -> Path:
    """Write ``model`` (a transformers model, compressed or not, or a LoadedModel) as a GGUF file.

    ``source``: the model reference recorded in the file (default: the LoadedModel's ref);
    ``search-cli evaluate --model FILE.gguf`` scores the file against that model, on the rows of
    ``policy`` (a DataPolicy, recorded in the file) when given.
    """
    import gguf

    if hasattr(model, "graph") and hasattr(model, "model"):  # a LoadedModel
        tokenizer = model.tokenizer if tokenizer is None else tokenizer
        source = model.ref if source is None else source
        model = model.model
    from search.space.families import family_for

    family = gguf_family(family_for(getattr(model.config, "model_type", None)).name).family
    shapes = measure_shapes(model, family)
    fam = gguf_family_for(family, shapes)
    if is_gemma(fam.arch):  # what llama.cpp's Gemma graphs cannot run is refused before any work
        check_gemma(model, fam.arch, shapes.block_count, shapes.embedding_length, shapes.head_count, shapes.head_dim)
    tensors = collect_tensors(model, fam, shapes, dense_type=dense_type, weight_type=weight_type)
    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}-", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp, arch_name(fam))
        writer.add_name(str(source or getattr(model.config, "_name_or_path", "") or "devicefit model"))
        write_architecture(writer, model, fam, shapes)
        kind = write_tokenizer(writer, tokenizer, shapes.vocab_size)
        writer.add_string(TOKENIZER_KEY, kind)
        if source:
            writer.add_string(SOURCE_KEY, str(source))
        if recipe is not None:
            writer.add_string(RECIPE_KEY, recipe.to_json())
        if policy is not None:
            writer.add_string(POLICY_KEY, json.dumps(policy.record()))
        for t in tensors:
            writer.add_tensor(t.name, t.data, raw_dtype=getattr(gguf.GGMLQuantizationType, t.type))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return out


# ---- tensors ------------------------------------------------------------------------------
def collect_tensors(model: Any, fam: GgufFamily, shapes: Shapes, *, dense_type: str = "auto",
                    weight_type: str | None = None) -> list[GgufTensor]:
    """Every tensor llama.cpp needs, named, typed and laid out (q/k rows reordered where needed)."""
    _check_type_names(dense_type, weight_type)
    names = tensor_name_map(fam, shapes.block_count)
    tied = _tied_head(model)
    out: list[GgufTensor] = []
    done: set[str] = set()
    for mod_name, module in model.named_modules():
        if any(mod_name.startswith(p + ".") for p in done) or (tied and mod_name == tied):
            continue
        if _is_packed(module) or _is_linear(module) or _is_embedding(module):
            done.add(mod_name)
            out.extend(_module_tensors(mod_name, module, names, fam, shapes, dense_type, weight_type))
            continue
        for pname, param in module.named_parameters(recurse=False):
            if is_gemma(fam.arch):
                param = stored_norm_weight(module, param)
            out.append(_float_tensor(names, f"{mod_name}.{pname}", param, "F32", fam, shapes))
    return out


def _check_type_names(dense_type: str, weight_type: str | None) -> None:
    if dense_type not in ("auto", *FLOAT_TYPES):
        raise ModelError(f"dense type {dense_type!r} is not a float GGUF type; use auto, F32, F16 or BF16")
    if weight_type is not None and weight_type not in (*PACKAGE_QUANTIZED, *FLOAT_TYPES):
        raise ModelError(f"weight type {weight_type!r} cannot be produced from dense weights here; use one of "
                         f"{', '.join((*PACKAGE_QUANTIZED, *FLOAT_TYPES))} (K-quants come from devicefit's quantizer)")


def _tied_head(model: Any) -> str | None:
    """The output head's module name when it shares the input embedding (llama.cpp reuses token_embd)."""
    head = getattr(model, "get_output_embeddings", lambda: None)()
    if head is None:
        return None
    embed = model.get_input_embeddings()
    if head is getattr(embed, "table", None):
        return None  # the embedding's own compressed table: named_modules() meets it once, inside the embedding
    if _is_packed(head) or _is_packed(embed):
        return None
    if head.weight.data_ptr() != embed.weight.data_ptr():
        return None
    return next(n for n, m in model.named_modules(remove_duplicate=False) if m is head and m is not embed)


def _is_packed(module: Any) -> bool:
    return isinstance(getattr(module, "ggml_type", None), str) and getattr(module, "blocks", None) is not None


def _is_linear(module: Any) -> bool:
    return (hasattr(module, "in_features") and hasattr(module, "out_features") and hasattr(module, "weight")) \
        or type(module).__name__ == "Conv1D"


def _is_embedding(module: Any) -> bool:
    return type(module).__name__ == "Embedding" or hasattr(module, "num_embeddings")


def _module_tensors(mod_name: str, module: Any, names: Any, fam: GgufFamily, shapes: Shapes,
                    dense_type: str, weight_type: str | None) -> list[GgufTensor]:
    weight_name = f"{mod_name}.weight"
    if _is_packed(module):
        data = module.blocks.detach().cpu().contiguous().numpy()
        out = [GgufTensor(gguf_tensor_name(names, weight_name), module.ggml_type.upper(),
                          _rotary_order(data, mod_name, fam, shapes))]
    elif mod_name.endswith(F32_TABLES):
        out = [_float_tensor(names, weight_name, module.weight, "F32", fam, shapes)]
    else:
        weight = module.weight.detach()
        if type(module).__name__ == "Conv1D":  # GPT-2 stores [in, out]; GGUF rows are output rows
            weight = weight.t().contiguous()
        kind = weight_type or dense_type
        if kind in PACKAGE_QUANTIZED:
            out = [_quantized_tensor(names, weight_name, weight, kind, fam, shapes)]
        else:
            out = [_float_tensor(names, weight_name, weight, kind, fam, shapes)]
    bias = getattr(module, "bias", None)
    if bias is not None:
        out.append(_float_tensor(names, f"{mod_name}.bias", bias, "F32", fam, shapes))
    return out


def _rotary_order(data: np.ndarray, hf_name: str, fam: GgufFamily, shapes: Shapes) -> np.ndarray:
    if not fam.pair_rotary_rows:
        return data
    if hf_name.endswith(("q_proj", "q_proj.weight", "q_proj.bias")):
        return pair_rotary_rows(data, shapes.head_count)
    if hf_name.endswith(("k_proj", "k_proj.weight", "k_proj.bias")):
        return pair_rotary_rows(data, shapes.head_count_kv)
    return data


def _float_tensor(names: Any, hf_name: str, tensor: Any, kind: str, fam: GgufFamily, shapes: Shapes) -> GgufTensor:
    import torch

    t = tensor.detach().cpu()
    if t.dim() <= 1:
        kind = "F32"  # llama.cpp reads norms and biases as F32
    if kind == "auto":
        kind = "BF16" if t.dtype == torch.bfloat16 else "F16"
    if kind == "BF16":
        data = t.to(torch.bfloat16).contiguous().view(torch.uint8).numpy()
    else:
        data = t.to(torch.float32 if kind == "F32" else torch.float16).contiguous().numpy()
    return GgufTensor(gguf_tensor_name(names, hf_name), kind, _rotary_order(data, hf_name, fam, shapes))


def _quantized_tensor(names: Any, hf_name: str, tensor: Any, kind: str, fam: GgufFamily,
                      shapes: Shapes) -> GgufTensor:
    import gguf
    import torch

    from search.formats.ggml_types import ggml_type

    w = tensor.detach().cpu().to(torch.float32).numpy()
    block = ggml_type(kind).block_size
    if w.shape[-1] % block:
        raise ModelError(f"{hf_name}: {kind} needs rows that are a multiple of {block} weights, not {w.shape[-1]}")
    w = _rotary_order(w, hf_name, fam, shapes)
    data = gguf.quants.quantize(w, getattr(gguf.GGMLQuantizationType, kind))
    return GgufTensor(gguf_tensor_name(names, hf_name), kind, data)
