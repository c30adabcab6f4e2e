"""The tokenizer as GGUF metadata, so llama.cpp tokenizes text the way the model was trained.

Two kinds are written:

- byte-level (devicefit's ByteTokenizer: token id = UTF-8 byte, as in demo:tinylm):
  llama.cpp's "gpt2" BPE model over the 256 bytes, each spelled by GPT-2's
  byte-to-character table (llama.cpp maps text bytes through the same table
  before looking tokens up). A "gpt2" vocabulary must carry at least one merge, so
  it carries exactly one that can never fire: a letter followed by a digit, which
  the "gpt-2" pre-tokenizer always puts into different words. Ids past 255 (a
  larger embedding table) are unused control tokens.
- WordPiece (BERT / MiniLM): llama.cpp's "bert" model. Like its converter, a word
  piece "##x" is stored as "x" and a word-initial piece "x" as "\u2581x"
  (llama.cpp marks word starts with U+2581); special tokens keep their text.

- byte-level BPE (GPT-2, Qwen2, Llama 3 style ``tokenizer.json``): llama.cpp's
  "gpt2" model with the tokenizer's own tokens and merges. llama.cpp hard-codes
  each pre-tokenizer's split rule under a name, so the name is chosen by the
  tokenizer's split pattern (GPT-2's, Llama 3's or Qwen2's); another pattern is
  refused rather than tokenized differently.

Other tokenizers (SentencePiece / Llama 2 style) are not written yet: a ModelError says so.
"""

from __future__ import annotations

from typing import Any

from search.errors import ModelError

# a pair that the gpt-2 pre-tokenizer never leaves adjacent (letters and digits split into separate words)
NEVER_FIRING_MERGE = "a 1"

# split patterns of Hugging Face byte-level BPE tokenizers -> llama.cpp's pre-tokenizer name for that rule
_CONTRACTIONS = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
_TAIL = "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
SPLIT_PATTERNS = {
    _CONTRACTIONS + "\\p{N}{1,3}" + _TAIL: "llama-bpe",  # Llama 3
    _CONTRACTIONS + "\\p{N}" + _TAIL: "qwen2",
}


def byte_to_char() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (bytes that print stay themselves)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _is_byte_tokenizer(tokenizer: Any) -> bool:
    return type(tokenizer).__name__ == "ByteTokenizer"


def write_tokenizer(writer: Any, tokenizer: Any, vocab_size: int) -> str:
    """Add the tokenizer to the GGUF writer; returns the kind written ("bytes" or "wordpiece")."""
    if _is_byte_tokenizer(tokenizer):
        _write_bytes(writer, vocab_size)
        return "bytes"
    if _backend_model(tokenizer) == "WordPiece":
        _write_wordpiece(writer, tokenizer, vocab_size)
        return "wordpiece"
    if _backend_model(tokenizer) == "BPE":
        _write_bpe(writer, tokenizer, vocab_size)
        return "bpe"
    raise ModelError(f"GGUF export cannot write a {type(tokenizer).__name__} tokenizer yet "
                     "(supported: byte-level ByteTokenizer, byte-level BPE, WordPiece/BERT)")


def _backend_model(tokenizer: Any) -> str | None:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return None if backend is None else type(backend.model).__name__


def bpe_pre_tokenizer(spec: dict | None) -> str:
    """llama.cpp's pre-tokenizer name for a tokenizer.json "pre_tokenizer" (ModelError when it has none)."""
    spec = spec or {}
    if spec.get("add_prefix_space") or any(p.get("add_prefix_space") for p in spec.get("pretokenizers", [])):
        raise ModelError("the tokenizer adds a space before the text; llama.cpp's byte-level BPE does not, "
                         "so it is not exported")
    if spec.get("type") == "ByteLevel" and spec.get("use_regex", True):
        return "gpt-2"
    parts = spec.get("pretokenizers", []) if spec.get("type") == "Sequence" else []
    splits = [p for p in parts if p.get("type") == "Split"]
    if len(splits) == 1 and any(p.get("type") == "ByteLevel" and not p.get("use_regex", True) for p in parts):
        pattern = splits[0].get("pattern", {}).get("Regex")
        if pattern in SPLIT_PATTERNS:
            return SPLIT_PATTERNS[pattern]
    raise ModelError("the tokenizer's pre-tokenizer is none that llama.cpp implements by name (GPT-2, Llama 3, "
                     "Qwen2 byte-level BPE); its text would be split differently, so it is not exported")


def _write_bytes(writer: Any, vocab_size: int) -> None:
    import gguf

    if vocab_size < 256:
        raise ModelError(f"a byte-level vocabulary needs at least 256 ids, the model has {vocab_size}")
    chars = byte_to_char()
    tokens = [chars[b] for b in range(256)] + [f"[UNUSED_{i}]" for i in range(256, vocab_size)]
    types = [gguf.TokenType.NORMAL] * 256 + [gguf.TokenType.CONTROL] * (vocab_size - 256)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([NEVER_FIRING_MERGE])
    # no special tokens exist in a byte vocabulary; llama.cpp needs ids, and NUL never occurs in text
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(0)
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)


def _write_wordpiece(writer: Any, tokenizer: Any, vocab_size: int) -> None:
    import gguf

    vocab = tokenizer.get_vocab()
    by_id = {i: t for t, i in vocab.items()}
    if len(by_id) > vocab_size or max(by_id) >= vocab_size:
        raise ModelError(f"the tokenizer has {len(by_id)} tokens but the model only {vocab_size} embeddings")
    special = set(getattr(tokenizer, "all_special_ids", []))
    tokens, types = [], []
    for i in range(vocab_size):
        text = by_id.get(i, f"[UNUSED_{i}]")
        if i in special or i not in by_id:
            tokens.append(text)
            types.append(gguf.TokenType.CONTROL)
        else:
            tokens.append(text[2:] if text.startswith("##") else "\u2581" + text)
            types.append(gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    for name in ("cls", "sep", "unk", "pad", "mask"):
        token_id = getattr(tokenizer, f"{name}_token_id", None)
        if token_id is not None:
            {"cls": writer.add_bos_token_id, "sep": writer.add_sep_token_id, "unk": writer.add_unk_token_id,
             "pad": writer.add_pad_token_id, "mask": writer.add_mask_token_id}[name](int(token_id))
    if getattr(tokenizer, "sep_token_id", None) is not None:
        writer.add_eos_token_id(int(tokenizer.sep_token_id))
    writer.add_add_bos_token(True)  # [CLS] ... [SEP], as the encoder was trained
    writer.add_add_sep_token(True)


def _write_bpe(writer: Any, tokenizer: Any, vocab_size: int) -> None:
    import json

    import gguf

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    pre = bpe_pre_tokenizer(spec.get("pre_tokenizer"))
    vocab = tokenizer.get_vocab()
    by_id = {i: t for t, i in vocab.items()}
    if max(by_id) >= vocab_size:
        raise ModelError(f"the tokenizer has ids up to {max(by_id)} but the model only {vocab_size} embeddings")
    special = set(getattr(tokenizer, "all_special_ids", [])) | {
        int(t["id"]) for t in spec.get("added_tokens", []) if t.get("special")}
    tokens = [by_id.get(i, f"[UNUSED_{i}]") for i in range(vocab_size)]
    types = [gguf.TokenType.CONTROL if i in special or i not in by_id else gguf.TokenType.NORMAL
             for i in range(vocab_size)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"].get("merges", [])]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges or [NEVER_FIRING_MERGE])
    for name, add in (("bos", writer.add_bos_token_id), ("eos", writer.add_eos_token_id),
                      ("pad", writer.add_pad_token_id), ("unk", writer.add_unk_token_id)):
        token_id = getattr(tokenizer, f"{name}_token_id", None)
        if token_id is not None:
            add(int(token_id))
    writer.add_add_bos_token(bool(getattr(tokenizer, "add_bos_token", False)))
    writer.add_add_eos_token(False)
