"""Save a compressed model to a directory and load it back.

Directory layout (format version 2):
  devicefit.safetensors  the compressed model's state_dict as it is: packed uint8 codes and masks,
                         float16 scales, uint8 zero points, bfloat16 values/biases/embeddings/norms
  recipe.json            the CompressionConfig that built it
  devicefit_config.json  the ORIGINAL (uncompressed) model config
  config.json            a stub that plain transformers refuses with a message saying what to do
                         (its model_type is no transformers architecture): loading packed weights
                         into a standard model would silently give random weights
  devicefit.json         format name and version, file names, source, tied-tensor aliases, tokenizer kind
  tokenizer files        when the source model had a tokenizer (tokenizer.save_pretrained)

Version 1 (model.safetensors + the original config as config.json) still loads.
Loading rebuilds the original architecture from the original config (no weight
initialisation), applies the recipe's *structure* (depth, width, low-rank, packed
module types and shapes; no data) and loads the state strictly. The directory is
written to a temporary sibling and renamed into place, so a crash never leaves a
half-written export under the requested name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from search.errors import ModelError

FORMAT = "devicefit-compressed"
FORMAT_VERSION = 2
WEIGHTS = "devicefit.safetensors"
ORIGINAL_CONFIG = "devicefit_config.json"
V1_FILES = {"weights": "model.safetensors", "config": "config.json"}
# transformers' refusal quotes the model_type: so the model_type says what to do instead
REFUSAL_MODEL_TYPE = ("devicefit-packed (not a transformers checkpoint: load it with search.load_compressed(DIR) "
                      "or search-cli --model DIR, or export the candidate with --format hf)")


def export_compressed(loaded: Any, compressed_model: Any, recipe: Any, out_dir: str | Path, *,
                      extra_files: dict[str, str] | None = None) -> Path:
    """Write the export directory atomically; returns its path. loaded: the LoadedModel it was made from;
    extra_files: more text files to write beside the weights (name -> content)."""
    from safetensors.torch import save_file

    from search.exporters.staging import staged_directory

    with staged_directory(out_dir, lambda path: (path / "devicefit.json").is_file()) as tmp:
        tensors, aliases = _unique_tensors(compressed_model.state_dict())
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        (tmp / "recipe.json").write_text(recipe.to_json(indent=2) + "\n")
        loaded.model.config.to_json_file(str(tmp / ORIGINAL_CONFIG), use_diff=False)
        (tmp / "config.json").write_text(json.dumps(refusal_config(), indent=2) + "\n")
        tokenizer = "byte"
        if hasattr(loaded.tokenizer, "save_pretrained"):
            loaded.tokenizer.save_pretrained(str(tmp))
            tokenizer = "saved"
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "weights": WEIGHTS, "config": ORIGINAL_CONFIG,
                "source": loaded.ref, "aliases": aliases, "tokenizer": tokenizer, "summary": recipe.summary()}
        (tmp / "devicefit.json").write_text(json.dumps(meta, indent=2) + "\n")
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
    return Path(out_dir).expanduser().resolve()


def refusal_config() -> dict[str, Any]:
    """config.json of a devicefit export: AutoConfig/AutoModel refuse it, quoting the model_type's advice."""
    return {"model_type": REFUSAL_MODEL_TYPE, "architectures": ["DevicefitPackedModel"],
            "devicefit_config": ORIGINAL_CONFIG,
            "note": "devicefit-native export: packed weights in devicefit.safetensors, the original model config "
                    "in devicefit_config.json. Plain transformers cannot read it; see docs/export.md."}


def _unique_tensors(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """safetensors refuses shared storage: keep the first name, record the rest (e.g. a tied lm_head) as aliases."""
    first: dict[tuple[int, int, tuple[int, ...]], str] = {}
    tensors: dict[str, Any] = {}
    aliases: dict[str, str] = {}
    for name, t in state.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if key in first:
            aliases[name] = first[key]
            continue
        first[key] = name
        tensors[name] = t.detach().contiguous()
    return tensors, aliases


def load_compressed(directory: str | Path) -> Any:
    """LoadedModel of a devicefit export (graph = the original model's graph)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig
    from transformers.initialization import no_init_weights

    from search.compress import apply
    from search.hf_models import LoadedModel, class_kwargs, load_tokenizer, model_class, quiet_transformers
    from search.recipe import parse_recipe
    from search.space.graph import graph_from_config

    path = Path(directory)
    meta = _read_json(path / "devicefit.json")
    if meta.get("format") != FORMAT or meta.get("version") not in (1, FORMAT_VERSION):
        raise ModelError(f"{str(path)!r} is not a devicefit export of format version 1 or {FORMAT_VERSION}")
    files = V1_FILES if meta["version"] == 1 else {"weights": WEIGHTS, "config": ORIGINAL_CONFIG}
    config = _read_json(path / files["config"])
    recipe = parse_recipe((path / "recipe.json").read_text())
    graph = graph_from_config(config)
    quiet_transformers()
    cfg = AutoConfig.for_model(**config)
    with no_init_weights():  # every tensor is loaded below
        skeleton = model_class(cfg.model_type)(cfg, **class_kwargs(cfg.model_type)).eval()
    model = apply(skeleton, recipe, structure_only=True, graph=graph)
    del skeleton
    if not (path / files["weights"]).is_file():
        raise ModelError(f"export is missing {files['weights']} in {str(path)!r}")
    state = load_file(str(path / files["weights"]))
    for alias, target in meta.get("aliases", {}).items():
        state[alias] = state[target]
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{str(path)!r} does not match its recipe: {str(exc).splitlines()[0]}") from None
    tokenizer = load_tokenizer(path, config)
    return LoadedModel(ref=str(path), model=model.eval(), tokenizer=tokenizer, graph=graph, source_dir=path)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelError(f"export is missing {path.name} in {str(path.parent)!r}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{str(path)!r} is not valid JSON: {exc}") from None
