"""Calibration/evaluation text: default corpus, disjoint splits, token rows, caching, errors."""

import pytest

from search.data import calibration_batches, default_documents, split_documents, text_part, text_tokens
from search.errors import DeviceFitError, SpecError
from search.models import ByteTokenizer


def test_default_corpus_splits_into_disjoint_calib_and_eval_documents():
    docs = default_documents()
    assert len(docs) > 20 and docs == default_documents()  # deterministic order
    calib, evals = text_part(None, "calib"), text_part(None, "eval")
    # the two parts partition the corpus at a document boundary: no document is in both
    cuts = [k for k in range(1, len(docs)) if "\n\n".join(docs[:k]) == calib]
    assert len(cuts) == 1 and "\n\n".join(docs[cuts[0]:]) == evals
    assert 0.7 < len(calib) / (len(calib) + len(evals)) < 0.9


def test_user_text_without_paragraphs_is_cut_at_whitespace():
    text = " ".join(f"word{i}" for i in range(1000))
    calib, evals = split_documents([text], "calib"), split_documents([text], "eval")
    assert calib + evals == text and 0.75 < len(calib) / len(text) < 0.85
    with pytest.raises(SpecError, match="split 'test'"):
        split_documents([text], "test")


def test_byte_rows_are_disjoint_contiguous_runs_of_the_eval_text():
    tok = ByteTokenizer(384)
    batch = calibration_batches(tok, split="eval", n=8, seq_len=64)
    assert batch.shape == (8, 64) and str(batch.dtype) == "torch.int64"
    stream = bytes(text_tokens(tok, split="eval"))
    starts = [stream.find(bytes(row.tolist())) for row in batch]
    assert all(s >= 0 for s in starts)  # each row is a contiguous run of the eval text
    assert all(b - a >= 64 for a, b in zip(starts, starts[1:], strict=False))  # in order, never overlapping
    calib = bytes(text_tokens(tok, split="calib"))
    assert bytes(batch[0].tolist()) not in calib


def test_bert_rows_are_wrapped_in_cls_and_sep(minilm):
    tok = minilm.tokenizer
    batch = calibration_batches(tok, split="eval", n=4, seq_len=32)
    assert batch.shape == (4, 32)
    assert (batch[:, 0] == tok.cls_token_id).all() and (batch[:, -1] == tok.sep_token_id).all()
    body = batch[:, 1:-1]
    assert not ((body == tok.cls_token_id) | (body == tok.sep_token_id)).any()


def test_batches_are_cached_but_callers_get_their_own_copy():
    tok = ByteTokenizer(256)
    first = calibration_batches(tok, split="calib", n=2, seq_len=16)
    first.zero_()
    again = calibration_batches(tok, split="calib", n=2, seq_len=16)
    assert again.sum() > 0
    assert (again == calibration_batches(ByteTokenizer(256), split="calib", n=2, seq_len=16)).all()


def test_user_text_string_and_file(tmp_path):
    text = "\n\n".join(f"Paragraph {i}: " + "some words here. " * 20 for i in range(10))
    path = tmp_path / "corpus.txt"
    path.write_text(text)
    from_string = calibration_batches(ByteTokenizer(256), text, "eval", n=2, seq_len=32)
    from_file = calibration_batches(ByteTokenizer(256), path, "eval", n=2, seq_len=32)
    assert (from_string == from_file).all()
    assert bytes(from_string[0].tolist()).decode() in text_part(text, "eval")


def test_too_short_text_says_how_many_tokens_it_has():
    with pytest.raises(SpecError, match=r"has only \d+ tokens, but 4 samples x 64 tokens need 256"):
        calibration_batches(ByteTokenizer(256), "short text.\n\nanother short one.", "eval", n=4, seq_len=64)


def test_bad_arguments_and_files(tmp_path):
    tok = ByteTokenizer(256)
    with pytest.raises(SpecError, match="at least 1"):
        calibration_batches(tok, n=0)
    with pytest.raises(SpecError, match="too short"):
        calibration_batches(tok, seq_len=1)
    from search.data import read_text_file

    with pytest.raises(DeviceFitError, match="does not exist"):
        read_text_file(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(DeviceFitError, match="is empty"):
        read_text_file(tmp_path / "empty.txt")
