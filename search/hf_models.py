"""Hugging Face transformers models as devicefit holds them: LoadedModel, building a model from a
config, its class and tokenizer. The lowest layer of model handling: it knows no demos, exports or
references (search/models.py resolves those)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.errors import ModelError
from search.space.families import family_for
from search.space.graph import ModelGraph


@dataclass
class LoadedModel:
    """A model ready to evaluate: the torch module, its tokenizer and its graph."""

    ref: str
    model: Any  # torch.nn.Module, in eval mode
    tokenizer: Any  # callable like a HF tokenizer, or ByteTokenizer
    graph: ModelGraph
    source_dir: Path | None = None


def model_class(model_type: str) -> Any:
    import transformers

    family = family_for(model_type)
    return {"llama": transformers.LlamaForCausalLM, "qwen2": transformers.Qwen2ForCausalLM,
            "qwen3": transformers.Qwen3ForCausalLM, "mistral": transformers.MistralForCausalLM,
            "phi3": transformers.Phi3ForCausalLM, "gemma2": transformers.Gemma2ForCausalLM,
            "gemma3": transformers.Gemma3ForCausalLM,  # a Gemma3TextConfig (model_type gemma3_text)
            "gpt2": transformers.GPT2LMHeadModel, "bert": transformers.BertModel}[family.name]


def class_kwargs(model_type: str) -> dict[str, Any]:
    # encoders are evaluated as embedding models: the unused pooler is not loaded
    return {"add_pooling_layer": False} if family_for(model_type).name == "bert" else {}


def build_from_config(config: dict[str, Any], seed: int = 0) -> Any:
    """A model with random weights from a config dict (architecture only)."""
    import torch
    import transformers

    family_for(config.get("model_type"))
    cfg = transformers.AutoConfig.for_model(**config)
    torch.manual_seed(seed)
    model = model_class(cfg.model_type)(cfg, **class_kwargs(cfg.model_type))
    return model.eval()


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
