"""Calibration and evaluation text, as batches of token ids.

The default corpus is the documentation text that ships with every CPython in
``pydoc_data.topics`` (the text behind ``help('if')``): offline, identical on
every machine with the same Python, and natural English prose mixed with code,
which is what compressed language models meet in practice. A user may give
their own text (a string or a file) instead.

The text is split into two disjoint parts: "calib" (the first ~80% of the
characters, ending at a document boundary) feeds the transforms that look at
activations (Wanda scores, width-pruning importance); "eval" (the rest) is what
quality is measured on, so a recipe is never scored on the text it was fitted to.

A user may also give a separate held-out evaluation text (``eval_text``): then the
evaluation rows come from all of it (split "all"; it is never shared with
calibration), while the calibration rows still come from the calib part of the
calibration text.

Each batch row is a contiguous run of tokens; the n rows are spread evenly over
the part. Tokenizers with [CLS]/[SEP] tokens (BERT-style encoders) get each row
wrapped as ``[CLS] tokens [SEP]``, the form such encoders are trained and used
with, so embedding fidelity is measured on realistic inputs; other tokenizers
(causal LMs, the byte tokenizer) get plain token runs with no special tokens.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from search.errors import DeviceFitError, SpecError

if TYPE_CHECKING:
    import torch

Split = Literal["calib", "eval", "all"]  # "all": the whole text (a held-out evaluation text)
CALIB_FRACTION = 0.8
MAX_TEXT_FILE_BYTES = 16 * 2**20  # a text file bigger than this is refused before it is read
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_TOKENS: OrderedDict[tuple, list[int]] = OrderedDict()  # (tokenizer, text hash, split) -> token ids
_BATCHES: OrderedDict[tuple, Any] = OrderedDict()  # ... + (n, seq_len) -> LongTensor
_CACHE_ENTRIES = 16


def default_documents() -> list[str]:
    """The stdlib's pydoc topics, in sorted key order (deterministic across runs)."""
    from pydoc_data.topics import topics

    return [topics[key].strip() for key in sorted(topics)]


def read_text_file(path: str | os.PathLike, what: str = "calibration text") -> str:
    """A user's text file (``what`` names it in errors), with one-line errors for the usual mistakes."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise DeviceFitError(f"{what} file {str(path)!r} is a directory; give a UTF-8 text file")
    if not p.is_file():
        raise DeviceFitError(f"{what} file {str(path)!r} does not exist")
    try:
        size = p.stat().st_size
        if size > MAX_TEXT_FILE_BYTES:
            raise DeviceFitError(f"{what} file {str(path)!r} is {size / 2**20:.1f} MiB, more than the "
                                 f"{MAX_TEXT_FILE_BYTES // 2**20} MiB limit; give a shorter excerpt")
        raw = p.read_bytes()
    except OSError as exc:
        raise DeviceFitError(f"{what} file {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeviceFitError(f"{what} file {str(path)!r} is not UTF-8 text: byte 0x{raw[exc.start]:02x} at "
                             f"byte offset {exc.start} cannot be decoded") from None
    if not text.strip():
        raise DeviceFitError(f"{what} file {str(path)!r} is empty")
    return text


def split_documents(documents: list[str], split: Split) -> str:
    """The calib (first ~80%) or eval (rest) part of the documents, cut at a document boundary."""
    if split not in ("calib", "eval"):
        raise SpecError(f"text split {split!r} is unknown; use 'calib' or 'eval' (or 'all' for a whole text)")
    documents = [d for d in documents if d.strip()]
    if not documents:
        raise DeviceFitError("the calibration text is empty")
    if len(documents) == 1:
        documents = _halves_at_whitespace(documents[0])
    total = sum(len(d) for d in documents)
    target, running, best_cut, best_gap = CALIB_FRACTION * total, 0, 1, float("inf")
    for k in range(1, len(documents)):  # the cut leaves at least one document on each side
        running += len(documents[k - 1])
        if abs(running - target) < best_gap:
            best_cut, best_gap = k, abs(running - target)
    part = documents[:best_cut] if split == "calib" else documents[best_cut:]
    return "\n\n".join(part)


def _halves_at_whitespace(text: str) -> list[str]:
    """One long document: cut at the whitespace nearest 80% of its characters."""
    pieces = [p for p in _PARAGRAPH_BREAK.split(text) if p.strip()]
    if len(pieces) > 1:
        return pieces
    at = int(CALIB_FRACTION * len(text))
    space = text.rfind(" ", 0, at)
    at = space if space > 0 else at
    return [text[:at], text[at:]]


def text_part(text: str | os.PathLike | None, split: Split) -> str:
    """The chosen part of the user's text (a string, or a Path to a file) or of the default corpus;
    split "all" is the whole text (a held-out evaluation text shares nothing with calibration)."""
    if text is None:
        documents = default_documents()
        return "\n\n".join(documents) if split == "all" else split_documents(documents, split)
    if isinstance(text, os.PathLike):
        text = read_text_file(text, "evaluation text" if split == "all" else "calibration text")
    if split == "all":
        if not text.strip():
            raise DeviceFitError("the evaluation text is empty")
        return text
    return split_documents(_PARAGRAPH_BREAK.split(text), split)


def _tokenizer_key(tokenizer: Any) -> tuple:
    # a loaded tokenizer is identified by its class, where it came from and its vocabulary size;
    # the byte tokenizer's ids do not depend on anything but the text
    size = getattr(tokenizer, "vocab_size", None)
    try:
        size = len(tokenizer)
    except TypeError:
        pass
    return (type(tokenizer).__qualname__, str(getattr(tokenizer, "name_or_path", "")), size)


def _special_wrap(tokenizer: Any) -> tuple[int, int] | None:
    cls_id, sep_id = getattr(tokenizer, "cls_token_id", None), getattr(tokenizer, "sep_token_id", None)
    return (cls_id, sep_id) if cls_id is not None and sep_id is not None else None


def _remember(cache: OrderedDict, key: tuple, value: Any) -> Any:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _CACHE_ENTRIES:
        cache.popitem(last=False)
    return value


def text_tokens(tokenizer: Any, text: str | os.PathLike | None = None, split: Split = "calib") -> list[int]:
    """All token ids of one part of the text (cached), without special tokens."""
    return _keyed_tokens(tokenizer, text, split)[1]


def _keyed_tokens(tokenizer: Any, text: str | os.PathLike | None, split: Split) -> tuple[tuple, list[int]]:
    part = text_part(text, split)
    key = (_tokenizer_key(tokenizer), hashlib.sha256(part.encode("utf-8")).hexdigest(), split)
    if key in _TOKENS:
        _TOKENS.move_to_end(key)
        return key, _TOKENS[key]
    from search.hf_models import quiet_transformers

    quiet_transformers()  # the "sequence longer than the model's maximum" warning is expected: we chunk it
    ids = list(tokenizer.encode(part, add_special_tokens=False))
    return key, _remember(_TOKENS, key, ids)


def calibration_batches(tokenizer: Any, text: str | os.PathLike | None = None, split: Split = "calib",
                        n: int = 16, seq_len: int = 128) -> torch.Tensor:
    """``n`` rows of ``seq_len`` token ids from one part of the text: a LongTensor [n, seq_len].

    ``text`` is the text itself, a Path to a text file, or None for the default
    corpus. Rows are contiguous token runs spread evenly over the part, disjoint
    from each other. Raises a one-line error when the part is too short.
    """
    import torch

    if n < 1:
        raise SpecError(f"number of calibration samples {n} must be at least 1")
    wrap = _special_wrap(tokenizer)
    overhead = 2 if wrap else 0
    if seq_len < 2 + overhead:
        raise SpecError(f"sequence length {seq_len} is too short; use at least {2 + overhead} tokens")
    text_key, ids = _keyed_tokens(tokenizer, text, split)
    key = (*text_key, n, seq_len)
    if key in _BATCHES:
        return _BATCHES[key].clone()  # a copy: callers may write into their batch
    body = seq_len - overhead
    if len(ids) < n * body:
        where = "the default corpus" if text is None else "the given text"
        what = "the evaluation text" if split == "all" else f"the {split} part of {where}"
        raise SpecError(f"{what} has only {len(ids):,} tokens, but {n} samples x "
                        f"{body} tokens need {n * body:,}; give a longer text or fewer samples / a shorter "
                        "sequence length")
    stride = (len(ids) - body) // (n - 1) if n > 1 else 0  # >= body, so rows never overlap
    rows = [ids[i * stride:i * stride + body] for i in range(n)]
    if wrap:
        rows = [[wrap[0], *row, wrap[1]] for row in rows]
    batch = torch.tensor(rows, dtype=torch.long)
    return _remember(_BATCHES, key, batch).clone()


def evaluation_batches(tokenizer: Any, text: str | os.PathLike | None, eval_text: str | os.PathLike | None,
                       n: int = 16, seq_len: int = 128) -> torch.Tensor:
    """The rows quality is measured on: from all of ``eval_text`` when given (the user's held-out text),
    else from the eval part of ``text`` (or of the default corpus)."""
    if eval_text is not None:
        return calibration_batches(tokenizer, eval_text, "all", n, seq_len)
    return calibration_batches(tokenizer, text, "eval", n, seq_len)


def policy_eval_batches(tokenizer: Any, policy: Any, rows: int | None = None) -> torch.Tensor:
    """A DataPolicy's evaluation rows (``rows``, default policy.eval_rows)."""
    return evaluation_batches(tokenizer, policy.text, policy.eval_text, policy.eval_rows if rows is None else rows,
                              policy.seq_len)
