"""The ``hf`` format: pick dense or compressed-tensors per layer and write the directory.

Quantized layers are written in compressed-tensors (hf_compressed); everything else dense
(hf_dense). What plain transformers has no place for is said, never silently changed:
- low-rank layers are merged back to one dense weight (b @ a): a standard model has no factor
  pairs, so the file and the memory are those of the dense layer (the runtime's real cost);
- compressed token embeddings are stored dense;
- GPT-2's Conv1D layers cannot be stored quantized, and BERT / GPT-2 with pruned heads have no
  standard config: refused with the format to use instead.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from search.errors import DeviceFitError


def plan_layers(loaded: Any, compressed: Any) -> tuple[dict[str, Any], list[str], bool]:
    """(quantized layers by module name, notes for the user, whether GGUF float layers are present)."""
    from search.compress.modules import LowRankLinear
    from search.exporters.hf_compressed import quantized_layer

    layers: dict[str, Any] = {}
    merged, dense_embedding, gguf_float = [], False, False
    skip: list[str] = []
    for name, module in compressed.named_modules():
        if any(name.startswith(p + ".") for p in skip):
            continue
        if type(module).__name__ == "QuantizedEmbedding":
            dense_embedding = True
            skip.append(name)
        elif isinstance(module, LowRankLinear):
            merged.append(name)
            skip.append(name)
        else:
            layer = quantized_layer(name, module)
            if layer is not None:
                layers[name] = layer
            elif getattr(module, "ggml_type", None) is not None:
                gguf_float = True
    if layers and loaded.graph.fam.weight_layout == "conv1d":
        raise DeviceFitError("--format hf cannot store GPT-2's Conv1D layers quantized (compressed-tensors "
                             "quantizes nn.Linear layers); export with --format devicefit")
    notes = []
    if merged:
        notes.append(f"{len(merged)} low-rank layer(s) merged back to dense weights (b @ a): a standard "
                     "transformers model has no factorised layers, so they take their dense size")
    if dense_embedding:
        notes.append("the compressed token embeddings are stored dense (their dequantized values)")
    return layers, notes, gguf_float


def write_hf(loaded: Any, compressed: Any, recipe: Any, out_dir: Any, *,
             extra_files: dict[str, str] | None = None) -> Path:
    """A directory plain transformers loads (AutoModelForCausalLM / AutoModel.from_pretrained)."""
    from search.exporters.hf_compressed import write_hf_compressed
    from search.exporters.hf_dense import write_hf_dense

    layers, notes, gguf_float = plan_layers(loaded, compressed)
    if layers or gguf_float:
        path = write_hf_compressed(loaded, compressed, recipe, out_dir, layers, notes, extra_files)
    else:
        path = write_hf_dense(loaded, compressed, recipe, out_dir, notes, extra_files)
    for note in notes:  # after the write: a refusal stays the only line
        print(f"note: {note}", file=sys.stderr)
    return path


def hf_export_record(path: str | Path) -> dict[str, Any] | None:
    """The provenance record of an hf export (source, recipe, notes), or None when ``path`` is no hf export."""
    import json

    from search.exporters.hf_dense import PROVENANCE

    record = Path(path).expanduser() / PROVENANCE
    if not record.is_file():
        return None
    try:
        data = json.loads(record.read_text())
    except json.JSONDecodeError:
        raise DeviceFitError(f"{str(record)!r} is not valid JSON; is {str(path)!r} a complete hf export?") from None
    return data if data.get("format") == "hf" else None


def load_hf_export(path: str | Path, causal: bool) -> Any:
    """The hf export as plain transformers loads it (what a user of the export runs), in eval mode."""
    import transformers

    from search.models import quiet_transformers

    quiet_transformers()
    auto = transformers.AutoModelForCausalLM if causal else transformers.AutoModel
    return auto.from_pretrained(str(Path(path).expanduser())).eval()
