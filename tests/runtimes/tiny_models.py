"""Small random-init causal LMs for the llama.cpp tests, and the torch side of each comparison.

Weights are drawn wider than transformers' default (std 0.02 makes every
next-token distribution nearly uniform, so any two models look alike); with
std 1.2 / sqrt(hidden) (0.15 at hidden 64) the distributions are peaked and a
wrong layout or a quantization error shows as a clear KL.
"""

from __future__ import annotations

import numpy as np
import torch

ROW_LEN = 48


def causal_config(model_type: str, **overrides) -> dict:
    base = dict(model_type=model_type, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, vocab_size=256, max_position_embeddings=256,
                tie_word_embeddings=False, rms_norm_eps=1e-5)
    base.update(overrides)
    base.setdefault("initializer_range", 1.2 / base["hidden_size"] ** 0.5)
    return base


def tiny_causal(model_type: str, seed: int = 0, **overrides) -> torch.nn.Module:
    from search.models import build_from_config

    model = build_from_config(causal_config(model_type, **overrides), seed=seed).float()
    with torch.no_grad():  # norms and biases away from their trivial init, so their layout is tested too
        gen = torch.Generator().manual_seed(seed + 1)
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return model.eval()


def token_rows(n: int = 3, length: int = ROW_LEN, vocab: int = 256, seed: int = 0) -> list[list[int]]:
    gen = np.random.default_rng(seed)
    return [gen.integers(0, vocab, length).tolist() for _ in range(n)]


def torch_logits(model: torch.nn.Module, rows: list[list[int]]) -> np.ndarray:
    with torch.inference_mode():
        out = model(input_ids=torch.tensor(rows), use_cache=False).logits
    return out.float().numpy()


def mean_kl(p_logits: np.ndarray, q_logits: np.ndarray) -> float:
    """Mean over positions of KL(p || q), in nats, from logits (float64)."""
    p = torch.log_softmax(torch.from_numpy(np.asarray(p_logits, dtype=np.float64)), -1)
    q = torch.log_softmax(torch.from_numpy(np.asarray(q_logits, dtype=np.float64)), -1)
    return float((p.exp() * (p - q)).sum(-1).mean())


def llamacpp_logits(path, rows: list[list[int]]) -> np.ndarray:
    from search.runtimes.llamacpp import LlamaCppModel

    with LlamaCppModel(path, n_ctx=max(len(r) for r in rows), n_threads=2) as runtime:  # 2 = this machine
        return np.stack([runtime.logits(r) for r in rows])


def with_gguf_rounded_weights(model: torch.nn.Module, ggml_type: str) -> torch.nn.Module:
    """A copy whose 2-D weights are what ``ggml_type`` stores (gguf's own quantize -> dequantize)."""
    import copy

    import gguf

    qtype = getattr(gguf.GGMLQuantizationType, ggml_type)
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for _, p in twin.named_parameters():
            if p.dim() == 2:
                w = p.detach().float().numpy()
                p.copy_(torch.from_numpy(gguf.quants.dequantize(gguf.quants.quantize(w, qtype), qtype)))
    return twin


def round_linear_inputs(model: torch.nn.Module, ggml_type: str) -> torch.nn.Module:
    """Hook every nn.Linear so its input is rounded as llama.cpp rounds activations for ``ggml_type`` weights."""
    from search.formats.activation_rounding import round_linear_inputs as hook

    hook(model, ggml_type)
    return model
