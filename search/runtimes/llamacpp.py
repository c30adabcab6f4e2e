"""A GGUF file run by llama.cpp (through llama-cpp-python's C API): logits, embeddings, generation, timing.

Why the C API and not ``llama_cpp.Llama``: the model must be loaded with
``use_extra_bufts = False`` - on this machine's AMX CPU llama.cpp's extra
(repacked) weight buffers crash decoding of Q4_0/Q4_1/Q8_0 tensors - and the
high-level class has no way to set it. Thread counts are always explicit, so
timings say what they measured.

Token rows go in as ids (the evaluation rows devicefit already tokenized), so
the scores compare the models and not two tokenizers.
"""

from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path
from typing import Any

from search.errors import DeviceFitError, ModelError
from search.runtimes.generation import Generation, pick_token

_QUIET_LOG: Any = None  # the no-op log callback; kept referenced so ctypes never frees it
_BACKEND_READY = False


def llama_cpp_api() -> Any:
    """The low-level module ``llama_cpp.llama_cpp`` (one-line error when the extra is missing)."""
    try:
        import llama_cpp.llama_cpp as api
    except ImportError:
        raise DeviceFitError("running a GGUF needs llama-cpp-python: pip install 'devicefit[llamacpp]'") from None
    global _QUIET_LOG, _BACKEND_READY
    if _QUIET_LOG is None and not os.environ.get("DEVICEFIT_LLAMA_LOG"):  # set it to see llama.cpp's own log
        _QUIET_LOG = api.llama_log_callback(lambda level, text, data: None)
        api.llama_log_set(_QUIET_LOG, ctypes.c_void_p(0))
    if not _BACKEND_READY:
        api.llama_backend_init()
        _BACKEND_READY = True
    return api


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class LlamaCppModel:
    """One GGUF loaded by llama.cpp, with one context of ``n_ctx`` positions."""

    def __init__(self, path: str | os.PathLike, *, n_ctx: int = 512, n_threads: int | None = None,
                 embeddings: bool = False):
        api = llama_cpp_api()
        self.api, self.path = api, Path(path).expanduser()
        if not self.path.is_file():
            raise ModelError(f"GGUF file {str(path)!r} does not exist")
        self.threads = int(n_threads or default_threads())
        mparams = api.llama_model_default_params()
        mparams.n_gpu_layers = 0
        mparams.use_extra_bufts = False
        self.model = api.llama_model_load_from_file(str(self.path).encode(), mparams)
        if not self.model:
            raise ModelError(f"llama.cpp could not load {str(path)!r} (not a GGUF it understands)")
        self.vocab = api.llama_model_get_vocab(self.model)
        self.n_vocab = int(api.llama_vocab_n_tokens(self.vocab))
        self.n_embd = int(api.llama_model_n_embd(self.model))
        self.n_ctx = int(n_ctx)
        self.embeddings = embeddings
        cparams = api.llama_context_default_params()
        cparams.n_ctx = cparams.n_batch = cparams.n_ubatch = self.n_ctx  # one row = one batch
        cparams.n_seq_max = 1
        cparams.n_threads = cparams.n_threads_batch = self.threads
        cparams.embeddings = embeddings
        cparams.pooling_type = api.LLAMA_POOLING_TYPE_NONE  # per-token states; pooling is done like devicefit's
        cparams.no_perf = True
        self.ctx = api.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            api.llama_model_free(self.model)
            self.model = None
            raise ModelError(f"llama.cpp could not create a context for {str(path)!r}")
        self.batch = api.llama_batch_init(self.n_ctx, 0, 1)

    # ---- lifetime -------------------------------------------------------------------
    def close(self) -> None:
        if getattr(self, "batch", None) is not None:
            self.api.llama_batch_free(self.batch)
            self.batch = None
        if getattr(self, "ctx", None):
            self.api.llama_free(self.ctx)
            self.ctx = None
        if getattr(self, "model", None):
            self.api.llama_model_free(self.model)
            self.model = None

    def __enter__(self) -> LlamaCppModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: the library may already be gone
            pass

    # ---- metadata and tokens --------------------------------------------------------
    def metadata(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1 << 16)
        n = self.api.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", errors="replace") if n >= 0 else None

    def tokenize(self, text: str, *, add_special: bool = False) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        tokens = (self.api.llama_token * cap)()
        n = self.api.llama_tokenize(self.vocab, data, len(data), tokens, cap, add_special, False)
        if n < 0:
            raise DeviceFitError(f"llama.cpp tokenizer needs {-n} tokens for this text, more than expected")
        return list(tokens[:n])

    def piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self.api.llama_token_to_piece(self.vocab, int(token), buf, len(buf), 0, False)
        return buf.raw[:max(0, n)]

    def detokenize(self, ids: list[int]) -> str:
        return b"".join(self.piece(t) for t in ids).decode("utf-8", errors="replace")

    # ---- running --------------------------------------------------------------------
    def _clear(self) -> None:
        memory = self.api.llama_get_memory(self.ctx)
        if memory:
            self.api.llama_memory_clear(memory, True)

    def _decode(self, ids: list[int], start: int, outputs: str) -> None:
        """Run ids at positions start.. ; outputs: 'all' rows or only the 'last'."""
        if not ids:
            raise DeviceFitError("cannot run an empty token row")
        if start + len(ids) > self.n_ctx:
            raise DeviceFitError(f"{start + len(ids)} tokens exceed the context of {self.n_ctx} positions")
        bad = [t for t in ids if not 0 <= int(t) < self.n_vocab]
        if bad:
            raise DeviceFitError(f"token id {bad[0]} is outside the GGUF's vocabulary of {self.n_vocab}")
        b = self.batch
        b.n_tokens = len(ids)
        for i, token in enumerate(ids):
            b.token[i] = int(token)
            b.pos[i] = start + i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = 0
            b.logits[i] = 1 if outputs == "all" or i == len(ids) - 1 else 0
        rc = self.api.llama_decode(self.ctx, b)
        if rc != 0:
            raise DeviceFitError(f"llama.cpp decode failed with code {rc}")

    def logits(self, ids: list[int]) -> Any:
        """float32 logits [len(ids), vocab] of one row, from a fresh context (causal LMs)."""
        import numpy as np

        self._clear()
        self._decode(list(ids), 0, "all")
        ptr = self.api.llama_get_logits(self.ctx)
        return np.ctypeslib.as_array(ptr, shape=(len(ids), self.n_vocab)).copy()

    def hidden_states(self, ids: list[int]) -> Any:
        """float32 last hidden states [len(ids), n_embd] of one row (encoders; needs embeddings=True)."""
        import numpy as np

        if not self.embeddings:
            raise DeviceFitError("load the GGUF with embeddings=True to read hidden states")
        self._clear()
        self._decode(list(ids), 0, "all")
        ptr = self.api.llama_get_embeddings(self.ctx)
        return np.ctypeslib.as_array(ptr, shape=(len(ids), self.n_embd)).copy()

    def generate(self, prompt_ids: list[int], max_new_tokens: int = 64, *, temperature: float = 0.0,
                 seed: int = 0) -> Generation:
        """Continue prompt_ids: greedy (temperature 0) or sampled; stops at an end-of-generation token."""
        import numpy as np

        if max_new_tokens < 1:
            raise DeviceFitError(f"max new tokens {max_new_tokens} must be at least 1")
        prompt = list(prompt_ids)
        if len(prompt) + max_new_tokens > self.n_ctx:
            raise DeviceFitError(f"prompt ({len(prompt)} tokens) + {max_new_tokens} new tokens exceed the "
                                 f"context of {self.n_ctx}; use fewer new tokens")
        rng = np.random.default_rng(seed)
        self._clear()
        started = time.perf_counter()
        self._decode(prompt, 0, "last")
        prefill = time.perf_counter() - started
        new: list[int] = []
        started = time.perf_counter()
        while True:
            row = np.ctypeslib.as_array(self.api.llama_get_logits_ith(self.ctx, -1), shape=(self.n_vocab,))
            token = pick_token(row, temperature, rng)
            new.append(token)
            if len(new) >= max_new_tokens or self.api.llama_vocab_is_eog(self.vocab, token):
                break
            self._decode([token], len(prompt) + len(new) - 1, "last")
        decode = time.perf_counter() - started
        return Generation(prompt_ids=prompt, new_ids=new, text=self.detokenize(new), prefill_seconds=prefill,
                          decode_seconds=decode, threads=self.threads, runtime="llama.cpp")

