"""The ``hf`` format, dense: the compressed model as a standard transformers checkpoint.

Every compressed module becomes the plain layer transformers expects, holding the weight the
compressed module computes with: packed codes dequantized, low-rank factors multiplied back
(b @ a in float32), sparse weights stored with their zeros, GGUF blocks dequantized. The
config is the compressed model's own, whose shapes are the REAL ones (width, heads and depth
pruning already shrank intermediate_size, the head counts and num_hidden_layers), so a
pruned candidate is a smaller standard model. A fresh model of that config must take the
weights strictly: a shape the config cannot describe (e.g. BERT or GPT-2 with pruned heads:
their head size is hidden / heads) is refused instead of written wrong.

Weights are stored in bfloat16, the dtype devicefit computes in (a dequantized weight in
bfloat16 is exactly what a PackedLinear multiplies by). Beside them: the tokenizer, a
sentence-transformers model's pooling files, and devicefit_export.json (source and recipe).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from search.errors import DeviceFitError

PROVENANCE = "devicefit_export.json"
SENTENCE_TRANSFORMERS_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")


def is_compressed_linear(module: Any) -> bool:
    """A devicefit module standing where the original model has a linear layer."""
    from search.compress.modules import LowRankLinear, PackedLinear

    return isinstance(module, PackedLinear | LowRankLinear) or (
        hasattr(module, "ggml_type") and hasattr(module, "dense_weight") and hasattr(module, "blocks"))


def linear_weight(module: Any) -> tuple[Any, Any]:
    """(float32 weight [out, in], bias or None) that a (compressed) linear module computes with."""
    import torch

    from search.compress.modules import LowRankLinear

    if isinstance(module, LowRankLinear):
        a, _ = linear_weight(module.a)
        b, bias = linear_weight(module.b)
        return b @ a, bias
    if hasattr(module, "dense_weight"):
        return module.dense_weight(torch.float32), module.bias
    return module.weight.detach().to(torch.float32), module.bias


def dense_state(compressed: Any) -> dict[str, Any]:
    """The compressed model's state dict with every compressed module as a dense ``weight`` (+ ``bias``)."""
    state: dict[str, Any] = {}
    replaced: list[str] = []
    for name, module in compressed.named_modules(remove_duplicate=False):
        if any(name.startswith(p + ".") for p in replaced):
            continue
        if _is_table_embedding(module):
            state[f"{name}.weight"] = linear_weight(module.table)[0]
        elif is_compressed_linear(module):
            weight, bias = linear_weight(module)
            state[f"{name}.weight"] = weight
            if bias is not None:
                state[f"{name}.bias"] = bias.detach()
        else:
            continue
        replaced.append(name)
    for key, tensor in compressed.state_dict().items():
        if not any(key.startswith(p + ".") for p in replaced):
            state[key] = tensor
    return state


def _is_table_embedding(module: Any) -> bool:
    """search.compress.table_embedding.QuantizedEmbedding: token embeddings held by a compressed table."""
    return type(module).__name__ == "QuantizedEmbedding" and hasattr(module, "table")


def standard_model(loaded: Any, compressed: Any, dtype: Any = None) -> Any:
    """A fresh transformers model of the compressed model's config holding its dense weights (strict load)."""
    import copy

    import torch
    from transformers.initialization import no_init_weights

    from search.hf_models import model_class as _model_class

    dtype = dtype or torch.bfloat16
    config = copy.deepcopy(compressed.config)
    state = dense_state(compressed)
    pooler = _source_pooler(loaded) if loaded.graph.family == "bert" else {}
    state.update(pooler)
    kwargs = {"add_pooling_layer": bool(pooler)} if loaded.graph.family == "bert" else {}
    with no_init_weights():  # every tensor is loaded below
        model = _model_class(config.model_type)(config, **kwargs).to(dtype).eval()
    model.tie_weights()  # skipped without weight initialisation: a tied head would be saved twice
    for name, module in model.named_modules():
        if type(module).__name__ == "Conv1D" and f"{name}.weight" in state:  # GPT-2 stores [in, out]
            state[f"{name}.weight"] = state[f"{name}.weight"].t()
    state = {k: v.detach().to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc))
        raise DeviceFitError(
            f"--format hf cannot express this candidate: a standard {config.model_type} config cannot describe "
            f"its pruned shapes ({detail[:160]}); export it with --format devicefit") from None
    model.config.dtype = dtype
    return model


def _source_pooler(loaded: Any) -> dict[str, Any]:
    """BERT's pooler weights from the source checkpoint (devicefit drops the unused pooler when it loads)."""
    source = getattr(loaded, "source_dir", None)
    weights = Path(source) / "model.safetensors" if source else None
    if weights is None or not weights.is_file():
        return {}
    from safetensors import safe_open

    with safe_open(str(weights), "pt") as f:
        return {k.removeprefix("bert."): f.get_tensor(k) for k in f.keys()
                if k.removeprefix("bert.").startswith("pooler.")}


def write_side_files(loaded: Any, recipe: Any, directory: Path, fmt: str, notes: list[str],
                     extra_files: dict[str, str] | None = None) -> None:
    """Tokenizer, sentence-transformers files of the source, the provenance record and ``extra_files``."""
    if hasattr(loaded.tokenizer, "save_pretrained"):
        loaded.tokenizer.save_pretrained(str(directory))
    source = getattr(loaded, "source_dir", None)
    if source is not None and (Path(source) / "modules.json").is_file():
        src = Path(source)
        for name in SENTENCE_TRANSFORMERS_FILES:
            if (src / name).is_file():
                shutil.copy2(src / name, directory / name)
        for entry in json.loads((src / "modules.json").read_text()):
            sub = entry.get("path") or ""
            if sub and (src / sub).is_dir():
                shutil.copytree(src / sub, directory / sub, dirs_exist_ok=True)
    record = {"format": fmt, "source": loaded.ref, "summary": recipe.summary(), "notes": notes,
              "recipe": recipe.model_dump(mode="json")}
    (directory / PROVENANCE).write_text(json.dumps(record, indent=2) + "\n")
    for name, text in (extra_files or {}).items():
        (directory / name).write_text(text)


def is_hf_export(path: Path) -> bool:
    return (path / PROVENANCE).is_file()


def write_hf_dense(loaded: Any, compressed: Any, recipe: Any, out_dir: Any, notes: list[str] | None = None,
                   extra_files: dict[str, str] | None = None) -> Path:
    """Write the dense hf directory atomically; returns its path."""
    from search.exporters.staging import staged_directory

    model = standard_model(loaded, compressed)
    with staged_directory(out_dir, is_hf_export) as tmp:
        model.save_pretrained(str(tmp))
        write_side_files(loaded, recipe, tmp, "hf", list(notes or []), extra_files)
    return Path(out_dir).expanduser().resolve()
