"""GGUF files in llama.cpp on this machine: file size, decode tokens/s and quality per tensor type.

- speed: a Llama of demo:tinylm's exact shape (random weights: speed depends on the
  shapes and types only), each type built by devicefit (GgufLinear bytes, embeddings
  in the same type, F16/BF16/F32 dense), written with write_gguf, decoded by llama.cpp
  (greedy, 2 threads) and, for reference, by PyTorch (bfloat16 model, 2 threads);
- quality, causal: KL to the original of a random Llama (hidden 256, peaked weights)
  in torch (the search's score) and in llama.cpp; quality, encoder: demo:minilm's
  cosine in torch and in llama.cpp on the evaluator's default rows.

Run: .venv/bin/python bench/gguf_runtime.py  (writes docs/gguf_runtime.json)
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPEED_TYPES = ["F32", "BF16", "F16", "Q8_0", "Q6_K", "Q5_0", "Q4_K", "Q4_0"]
LM_TYPES = ["BF16", "Q8_0", "Q6_K", "Q5_0", "Q4_K", "Q4_0"]
MINILM_TYPES = ["F16", "Q8_0", "Q5_0", "Q4_0"]  # MiniLM rows are 384 wide: no K-quants (256-weight blocks)


def recipe_for(fmt: str):
    from search.recipe import CompressionConfig, parse_recipe

    if fmt == "F32":
        return CompressionConfig()
    return parse_recipe({"layers": {"_default": {"format": fmt}}, "embedding": {"format": fmt}})


def speed(tmp: Path) -> list[dict]:
    import torch

    from search.compress import apply
    from search.demos import DEFAULT_RECIPE
    from search.models import ByteTokenizer, LoadedModel, build_from_config
    from search.runtimes.gguf_writer import write_gguf
    from search.space.graph import graph_from_model
    from search.text_generation import generate, generate_torch

    model = build_from_config(DEFAULT_RECIPE.config(), seed=0).float()
    prompt = "The quick brown fox jumps over the lazy dog. " * 2
    rows = []
    for fmt in SPEED_TYPES:
        built = apply(model, recipe_for(fmt)) if fmt != "F32" else model
        path = write_gguf(built, ByteTokenizer(256), None, tmp / f"tinylm-shape-{fmt}.gguf", source=None,
                          dense_type="F32" if fmt == "F32" else "auto")
        best = max((generate(str(path), prompt, 128, threads=2) for _ in range(3)), key=lambda g: g.tokens_per_second)
        row = {"type": fmt, "file_bytes": path.stat().st_size, "llamacpp_tokens_per_s": round(best.tokens_per_second, 1),
               "llamacpp_prefill_ms": round(best.prefill_seconds * 1000, 2)}
        if fmt in ("BF16", "Q4_0", "Q8_0"):
            loaded = LoadedModel(ref="tinylm-shape", model=built if fmt != "F32" else built.to(torch.bfloat16),
                                 tokenizer=ByteTokenizer(256), graph=graph_from_model(model))
            t = max((generate_torch(loaded, prompt, 128, threads=2) for _ in range(2)),
                    key=lambda g: g.tokens_per_second)
            row["torch_tokens_per_s"] = round(t.tokens_per_second, 1)
        print(row, flush=True)
        rows.append(row)
    return rows


def lm_quality(tmp: Path) -> list[dict]:
    from search.compress import apply
    from search.models import ByteTokenizer
    from search.runtimes.activation_rounding import round_activations_like_llamacpp
    from search.runtimes.gguf_writer import write_gguf
    from tests.runtimes.tiny_models import llamacpp_logits, mean_kl, tiny_causal, token_rows, torch_logits

    teacher = tiny_causal("llama", hidden_size=256, intermediate_size=256)
    rows_ = token_rows(16, 64)
    t_logits = torch_logits(teacher, rows_)
    out = []
    for fmt in LM_TYPES:
        candidate = apply(teacher, recipe_for(fmt))
        path = write_gguf(candidate, ByteTokenizer(256), None, tmp / f"q-{fmt}.gguf")
        reference = candidate.float()
        torch_kl = mean_kl(t_logits, torch_logits(reference, rows_))
        round_activations_like_llamacpp(reference)
        emulated = mean_kl(t_logits, torch_logits(reference, rows_))
        cpp = mean_kl(t_logits, llamacpp_logits(path, rows_))
        row = {"type": fmt, "kl_torch": torch_kl, "kl_torch_llamacpp_activations": emulated, "kl_llamacpp": cpp,
               "file_bytes": path.stat().st_size}
        print(row, flush=True)
        out.append(row)
    return out


def minilm_quality(tmp: Path) -> list[dict]:
    from search.compress import apply
    from search.data_policy import DataPolicy
    from search.evaluation import loaded_model, score
    from search.runtimes.gguf_writer import write_gguf
    from search.runtimes.llamacpp_quality import evaluate_gguf

    loaded = loaded_model("demo:minilm")
    policy = DataPolicy()
    out = []
    for fmt in MINILM_TYPES:
        candidate = apply(loaded.model, recipe_for(fmt))
        path = write_gguf(candidate, loaded.tokenizer, recipe_for(fmt), tmp / f"minilm-{fmt}.gguf",
                          source="demo:minilm", policy=policy)
        scored = score(loaded, candidate, policy)["cosine"]
        cpp = evaluate_gguf(path, threads=2)["quality"]["cosine"]
        row = {"type": fmt, "cosine_search": scored, "cosine_llamacpp": cpp, "file_bytes": path.stat().st_size}
        print(row, flush=True)
        out.append(row)
    return out


def main() -> None:
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        result = {"load_average_at_start": os.getloadavg(), "speed_tinylm_shape": speed(Path(tmp)),
                  "quality_random_llama": lm_quality(Path(tmp)), "quality_minilm": minilm_quality(Path(tmp)),
                  "load_average_at_end": os.getloadavg(), "seconds": round(time.time() - started)}
    (ROOT / "docs" / "gguf_runtime.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
