"""GGUF files in llama.cpp on this machine: file size, decode tokens/s and quality per tensor type.

- speed: a Llama of demo:tinylm's exact shape (random weights: speed depends on the
  shapes and types only), each type built by devicefit (GgufLinear bytes, embeddings
  in the same type, F16/BF16/F32 dense), written with write_gguf, decoded by llama.cpp
  (greedy, 2 threads) and, for reference, by PyTorch (bfloat16 model, 2 threads);
- demo:tinylm (trained) candidates: the search's recorded KL next to llama.cpp's on the exported GGUF,
  file size, decode speed and the greedy continuation of a prompt;
- quality, causal: KL to the original of a random Llama (hidden 256, peaked weights)
  in torch (the search's score) and in llama.cpp; quality, encoder: demo:minilm's
  cosine in torch and in llama.cpp on the evaluator's default rows.

Run: .venv/bin/python bench/gguf_runtime.py [speed] [lm] [minilm]  (updates docs/gguf_runtime.json)
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
MINILM_TYPES = ["F16", "Q8_0", "Q5_0", "Q4_0"]
TORCH_TYPES = ("BF16", "Q8_0", "Q4_0")  # the torch (bfloat16) reference decodes these too
ROUNDS, NEW_TOKENS = 5, 64  # MiniLM rows are 384 wide: no K-quants (256-weight blocks)


def recipe_for(fmt: str):
    from search.recipe import CompressionConfig, parse_recipe

    if fmt == "F32":
        return CompressionConfig()
    return parse_recipe({"layers": {"_default": {"format": fmt}}, "embedding": {"format": fmt}})


def speed(tmp: Path) -> list[dict]:
    from search.compress import apply
    from search.demos import DEFAULT_RECIPE
    from search.models import ByteTokenizer, LoadedModel, build_from_config
    from search.runtimes.gguf_writer import write_gguf
    from search.space.graph import graph_from_model
    from search.text_generation import generate, generate_torch

    model = build_from_config(DEFAULT_RECIPE.config(), seed=0).float()
    prompt = "The quick brown fox jumps over the lazy dog. " * 2
    files, loaded = {}, {}
    for fmt in SPEED_TYPES:
        built = apply(model, recipe_for(fmt)) if fmt != "F32" else model
        files[fmt] = write_gguf(built, ByteTokenizer(256), None, tmp / f"tinylm-shape-{fmt}.gguf",
                                dense_type="F32" if fmt == "F32" else "auto")
        if fmt in TORCH_TYPES:
            loaded[fmt] = LoadedModel(ref="tinylm-shape", model=built, tokenizer=ByteTokenizer(256),
                                      graph=graph_from_model(model))
    best: dict[str, dict] = {f: {"type": f, "file_bytes": files[f].stat().st_size} for f in SPEED_TYPES}
    for _ in range(ROUNDS):  # round-robin, best of ROUNDS: the machine is shared, slow rounds are other work
        for fmt in SPEED_TYPES:
            g = generate(str(files[fmt]), prompt, NEW_TOKENS, threads=2)
            row = best[fmt]
            if g.tokens_per_second > row.get("llamacpp_tokens_per_s", 0):
                row.update(llamacpp_tokens_per_s=round(g.tokens_per_second, 1),
                           llamacpp_prefill_ms=round(g.prefill_seconds * 1000, 2))
            if fmt in loaded:
                t = generate_torch(loaded[fmt], prompt, NEW_TOKENS, threads=2)
                row["torch_tokens_per_s"] = max(row.get("torch_tokens_per_s", 0), round(t.tokens_per_second, 1))
    for row in best.values():
        print(row, flush=True)
    return list(best.values())


def lm_quality(tmp: Path) -> list[dict]:
    from search.compress import apply
    from search.models import ByteTokenizer
    from search.runtimes.gguf_writer import write_gguf
    from tests.runtimes.tiny_models import llamacpp_logits, mean_kl, tiny_causal, token_rows, torch_logits

    teacher = tiny_causal("llama", hidden_size=256, intermediate_size=256)
    rows_ = token_rows(16, 64)
    t_logits = torch_logits(teacher, rows_)
    out = []
    for fmt in LM_TYPES:
        candidate = apply(teacher, recipe_for(fmt))
        path = write_gguf(candidate, ByteTokenizer(256), None, tmp / f"q-{fmt}.gguf")
        reference = candidate.float()  # GgufLinear rounds its activations as llama.cpp does
        torch_kl = mean_kl(t_logits, torch_logits(reference, rows_))
        cpp = mean_kl(t_logits, llamacpp_logits(path, rows_))
        row = {"type": fmt, "kl_torch": torch_kl, "kl_llamacpp": cpp,
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


TINYLM_CANDIDATES = {  # name -> recipe JSON; K-quants need rows of 256 (tinylm: 256 / 768 wide)
    "bf16 (original)": {"layers": {"_default": {"format": "BF16"}}},
    "Q8_0": {"layers": {"_default": {"format": "Q8_0"}}, "embedding": {"format": "Q8_0"}},
    "Q6_K": {"layers": {"_default": {"format": "Q6_K"}}, "embedding": {"format": "Q6_K"}},
    "Q4_K": {"layers": {"_default": {"format": "Q4_K"}}, "embedding": {"format": "Q6_K"}},
    "Q4_0": {"layers": {"_default": {"format": "Q4_0"}}, "embedding": {"format": "Q8_0"}},
    "Q4_0 mlp x0.5": {"layers": {"_default": {"format": "Q4_0"}}, "embedding": {"format": "Q8_0"},
                      "width": {"mlp": 0.5}},
}


def tinylm(tmp: Path) -> list[dict]:
    """demo:tinylm (trained): the search's recorded KL vs llama.cpp's on the exported GGUF, size, speed, text."""
    from search.data_policy import DataPolicy
    from search.evaluation import evaluate_recipe, loaded_model
    from search.export_candidate import export_candidate
    from search.recipe import parse_recipe
    from search.runtimes.llamacpp_quality import evaluate_gguf
    from search.text_generation import generate

    loaded = loaded_model("demo:tinylm")
    policy = DataPolicy()
    prompt = "The value of "
    out = [{"candidate": "torch original (float32)",
            "text": generate(loaded, prompt, 48, threads=2).text}]
    for name, data in TINYLM_CANDIDATES.items():
        recipe = parse_recipe(data)
        recorded = evaluate_recipe(loaded, recipe, policy).quality
        path = export_candidate("demo:tinylm", recipe, tmp / f"tinylm-{len(out)}.gguf", policy=policy,
                                format="gguf")
        shipped = evaluate_gguf(path, threads=2)["quality"]
        runs = [generate(str(path), prompt, 48, threads=2) for _ in range(3)]
        fastest = max(runs, key=lambda g: g.tokens_per_second)
        row = {"candidate": name, "kl_recorded": recorded["kl"], "kl_llamacpp": shipped["kl"],
               "perplexity_recorded": recorded["perplexity"], "perplexity_llamacpp": shipped["perplexity"],
               "file_bytes": path.stat().st_size, "llamacpp_tokens_per_s": round(fastest.tokens_per_second, 1),
               "text": fastest.text}
        print(row, flush=True)
        out.append(row)
    return out


def main() -> None:
    parts = sys.argv[1:] or ["speed", "lm", "minilm", "tinylm"]
    out = ROOT / "docs" / "gguf_runtime.json"
    result = json.loads(out.read_text()) if out.is_file() else {}
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for part, fn, key in (("speed", speed, "speed_tinylm_shape"), ("lm", lm_quality, "quality_random_llama"),
                              ("minilm", minilm_quality, "quality_minilm"), ("tinylm", tinylm, "tinylm")):
            if part in parts:
                load = os.getloadavg()[0]
                result[key] = {"rows": fn(Path(tmp)), "load_average_1min_before": round(load, 2),
                               "load_average_1min_after": round(os.getloadavg()[0], 2)}
    result["seconds_last_run"] = round(time.time() - started)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
