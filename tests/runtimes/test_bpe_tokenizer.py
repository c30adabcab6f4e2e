"""A byte-level BPE tokenizer (GPT-2 / Qwen2 style tokenizer.json) in a GGUF tokenizes like Hugging Face's."""

from __future__ import annotations

import llama_cpp  # noqa: F401 - a missing runtime must fail the suite, never skip it
import pytest

from search.errors import ModelError
from search.runtimes.gguf_tokenizer import SPLIT_PATTERNS
from search.runtimes.gguf_writer import write_gguf
from search.runtimes.llamacpp import LlamaCppModel
from tests.runtimes.tiny_models import tiny_causal

TEXTS = ("Hello world, it's 2024!", "def f(x):\n    return x ** 2  # squares\n\n", "naïve café — 12345 tokens")


def _bpe(split: str | None, vocab: int = 320):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from search.data import text_part

    tok = Tokenizer(models.BPE())
    if split is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(split), behavior="isolated"),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>"], show_progress=False)
    tok.train_from_iterator([text_part(None, "calib")[:30000]], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")


@pytest.mark.parametrize("pre", ["gpt-2", "qwen2", "llama-bpe"])
def test_bpe_gguf_tokenizes_like_hugging_face(tmp_path, pre):
    split = None if pre == "gpt-2" else next(p for p, name in SPLIT_PATTERNS.items() if name == pre)
    tokenizer = _bpe(split)
    path = write_gguf(tiny_causal("llama", vocab_size=320), tokenizer, None, tmp_path / "bpe.gguf")
    with LlamaCppModel(path, n_ctx=64, n_threads=2) as runtime:
        assert runtime.metadata("tokenizer.ggml.pre") == pre
        for text in TEXTS:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            assert runtime.tokenize(text) == ids, text
            assert runtime.detokenize(ids) == text


def test_unknown_split_rule_is_refused(tmp_path):
    tokenizer = _bpe(r"\s+|\S+")
    with pytest.raises(ModelError, match="pre-tokenizer"):
        write_gguf(tiny_causal("llama", vocab_size=320), tokenizer, None, tmp_path / "x.gguf")
