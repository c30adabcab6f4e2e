"""search.generate(model, prompt) (this module; the name search.generate is the function): continue a prompt with a causal LM and say how fast it went.

``model`` is a model reference (the original, a devicefit or Hugging Face export:
run by PyTorch) or a ``.gguf`` file (run by llama.cpp). Both runtimes decode the
same way - one forward pass over the prompt, then one per new token with the
KV cache - so their tokens/s compare.
"""

from __future__ import annotations

import os
import time
from typing import Any

from search.errors import DeviceFitError
from search.runtimes.generation import Generation, pick_token


def is_gguf(ref: str | os.PathLike) -> bool:
    return str(ref).lower().endswith(".gguf")


def generate(model: str | os.PathLike | Any, prompt: str, max_new_tokens: int = 64, *, temperature: float = 0.0,
             seed: int = 0, threads: int | None = None) -> Generation:
    """Generate up to ``max_new_tokens`` after ``prompt`` (greedy unless temperature > 0)."""
    if not isinstance(prompt, str) or not prompt:
        raise DeviceFitError("the prompt is empty; give some text to continue")
    if max_new_tokens < 1:
        raise DeviceFitError(f"max new tokens {max_new_tokens} must be at least 1")
    if isinstance(model, str | os.PathLike) and is_gguf(model):
        return _generate_gguf(model, prompt, max_new_tokens, temperature, seed, threads)
    from search.models import load_model

    loaded = load_model(str(model)) if isinstance(model, str | os.PathLike) else model
    return generate_torch(loaded, prompt, max_new_tokens, temperature=temperature, seed=seed, threads=threads)


def _generate_gguf(path: str | os.PathLike, prompt: str, max_new_tokens: int, temperature: float, seed: int,
                   threads: int | None) -> Generation:
    from search.runtimes.llamacpp import LlamaCppModel

    # a tokenizer never makes more tokens than the text has bytes (plus its special tokens)
    n_ctx = len(prompt.encode("utf-8")) + max_new_tokens + 4
    with LlamaCppModel(path, n_ctx=n_ctx, n_threads=threads) as runtime:
        if runtime.metadata("general.architecture") == "bert":
            raise DeviceFitError(f"{str(path)!r} is an encoder (BERT); only causal LMs generate text")
        ids = runtime.tokenize(prompt, add_special=True)
        return runtime.generate(ids, max_new_tokens, temperature=temperature, seed=seed)


def generate_torch(loaded: Any, prompt: str, max_new_tokens: int, *, temperature: float = 0.0, seed: int = 0,
                   threads: int | None = None) -> Generation:
    """Greedy/sampled decoding of a loaded causal LM with its KV cache, timed like llama.cpp's."""
    import numpy as np
    import torch

    if not loaded.graph.is_causal:
        raise DeviceFitError(f"{loaded.ref!r} is an encoder ({loaded.graph.family}); only causal LMs generate text")
    ids = list(loaded.tokenizer.encode(prompt, add_special_tokens=False))
    if not ids:
        raise DeviceFitError("the prompt tokenizes to nothing")
    limit = loaded.graph.max_positions
    if len(ids) + max_new_tokens > limit:
        raise DeviceFitError(f"prompt ({len(ids)} tokens) + {max_new_tokens} new tokens exceed the model's "
                             f"{limit} positions; use fewer new tokens")
    eos = getattr(loaded.tokenizer, "eos_token_id", None)
    rng = np.random.default_rng(seed)
    before = torch.get_num_threads()
    used = int(threads or before)
    torch.set_num_threads(used)
    model = loaded.model
    try:
        with torch.inference_mode():
            started = time.perf_counter()
            out = model(input_ids=torch.tensor([ids]), use_cache=True)
            prefill = time.perf_counter() - started
            cache_key = "cache" if hasattr(out, "cache") else "past_key_values"  # transformers >= 5.2x renamed it
            new: list[int] = []
            started = time.perf_counter()
            while True:
                token = pick_token(out.logits[0, -1].float().numpy(), temperature, rng)
                new.append(token)
                if len(new) >= max_new_tokens or token == eos:
                    break
                out = model(input_ids=torch.tensor([[token]]), use_cache=True, **{cache_key: getattr(out, cache_key)})
            decode = time.perf_counter() - started
    finally:
        torch.set_num_threads(before)
    return Generation(prompt_ids=ids, new_ids=new, text=loaded.tokenizer.decode(new), prefill_seconds=prefill,
                      decode_seconds=decode, threads=used, runtime="torch")
