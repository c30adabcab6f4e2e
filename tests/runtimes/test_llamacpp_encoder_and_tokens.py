"""MiniLM (BERT) as GGUF: llama.cpp's embeddings and WordPiece tokens match; byte-level vocabularies round-trip."""

from __future__ import annotations

import llama_cpp  # noqa: F401 - a missing runtime must fail the suite, never skip it
import pytest

from search.data_policy import DataPolicy
from search.evaluation import loaded_model, score
from search.models import ByteTokenizer
from search.runtimes.gguf_writer import write_gguf
from search.runtimes.llamacpp import LlamaCppModel
from search.runtimes.llamacpp_quality import evaluate_gguf
from tests.runtimes.tiny_models import tiny_causal, with_gguf_rounded_weights

POLICY = DataPolicy(eval_rows=4, seq_len=64)


@pytest.fixture(scope="module")
def minilm_gguf(tmp_path_factory):
    return write_gguf(loaded_model("demo:minilm"), None, None, tmp_path_factory.mktemp("minilm") / "m.gguf",
                      dense_type="F32", policy=POLICY)


def test_minilm_gguf_embeddings_match_torch(minilm_gguf):
    result = evaluate_gguf(minilm_gguf, threads=2)
    assert result["source"] == "demo:minilm" and result["data"]["eval_rows"] == POLICY.eval_rows
    assert set(result["quality"]) == {"cosine"}
    assert result["quality"]["cosine"] > 0.9999, result


def test_minilm_q8_gguf_scores_like_torch_with_its_weights(tmp_path):
    loaded = loaded_model("demo:minilm")
    path = write_gguf(loaded, None, None, tmp_path / "q8.gguf", weight_type="Q8_0", policy=POLICY)
    twin = with_gguf_rounded_weights(loaded.model, "Q8_0")
    torch_cos = score(loaded, twin, POLICY)["cosine"]
    cpp_cos = evaluate_gguf(path, threads=2)["quality"]["cosine"]
    assert torch_cos < 0.99999  # quantization changes the embeddings measurably
    assert abs(cpp_cos - torch_cos) < 0.002, (cpp_cos, torch_cos)


def test_wordpiece_tokens_match_the_hf_tokenizer(minilm_gguf):
    tokenizer = loaded_model("demo:minilm").tokenizer
    with LlamaCppModel(minilm_gguf, n_ctx=64, n_threads=2, embeddings=True) as runtime:
        for text in ("The quick brown fox jumps over the lazy dog.", "Tokenization of unaffable words, 42!"):
            assert runtime.tokenize(text, add_special=True) == tokenizer(text)["input_ids"], text


def test_byte_vocabulary_round_trips_any_text(tmp_path):
    path = write_gguf(tiny_causal("llama"), ByteTokenizer(256), None, tmp_path / "b.gguf")
    text = "def f(a1, b2):\n    return 'naïve' + \"ünï\" * 3  # 100%\t✓"
    with LlamaCppModel(path, n_ctx=16, n_threads=2) as runtime:
        ids = runtime.tokenize(text, add_special=True)
        assert ids == list(text.encode("utf-8"))
        assert runtime.detokenize(ids) == text
