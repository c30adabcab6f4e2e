"""Scored vs shipped: each candidate's quality as the search scores it, and as each export gives it back.

For demo:tinylm and demo:minilm, a few candidates a llama.cpp device's search proposes (GGUF types, with
and without width pruning) and a float one: the quality devicefit scores (search.evaluation), the quality
re-scored from each export on disk (devicefit format; hf as plain transformers loads it; gguf as llama.cpp
runs it), the size on disk of each, and llama.cpp's speed on this machine against the bf16 GGUF of the
original (decode tokens/s for the causal LM; encode ms per 128 tokens for the encoder). All on the
default data policy (16 evaluation rows x 128 tokens of the stdlib's pydoc text).

Run: .venv/bin/python bench/scored_vs_shipped.py   (writes docs/scored_vs_shipped.{md,json})
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CANDIDATES = {  # label -> recipe data (a file type name is expanded by recipe_for_filetype)
    "BF16 (original)": {"layers": {"_default": {"format": "BF16"}}},
    "Q8_0": "Q8_0",
    "Q4_K_M": "Q4_K_M",
    "Q4_0": "Q4_0",
    "Q4_0 · mlp×0.75": {"layers": {"_default": {"format": "Q4_0"}}, "embedding": {"format": "Q4_0"},
                        "width": {"mlp": 0.75}},
}
SPEED_ROUNDS = 5


def recipe_of(spec, graph):
    from search.formats.filetypes import recipe_for_filetype
    from search.recipe import parse_recipe

    return recipe_for_filetype(graph, spec) if isinstance(spec, str) else parse_recipe(spec)


def disk_bytes(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def metric_of(quality: dict) -> float:
    return quality.get("kl", quality.get("cosine"))


def shipped(ref: str, label: str, recipe, policy, tmp: Path) -> dict:
    from search.errors import DeviceFitError
    from search.evaluation import evaluate_recipe, loaded_model
    from search.export_candidate import evaluate_export, export_candidate
    from search.runtimes.llamacpp_quality import evaluate_gguf

    loaded = loaded_model(ref)
    scored = evaluate_recipe(loaded, recipe, policy)
    row = {"model": ref, "candidate": label, "recipe": recipe.summary(), "scored": metric_of(scored.quality),
           "memory_bytes": scored.memory_bytes}
    for fmt in ("devicefit", "hf", "gguf"):
        out = tmp / f"{ref.replace(':', '_')}-{len(label)}-{abs(hash(label))}-{fmt}"
        try:
            path = export_candidate(ref, recipe, out, policy=policy, format=fmt, loaded=loaded,
                                    compressed=scored.compressed)
        except DeviceFitError as exc:
            row[fmt] = None
            row[f"{fmt}_note"] = str(exc)[:160]
            continue
        row[f"{fmt}_bytes"] = disk_bytes(path)
        if fmt == "gguf":
            row[fmt] = metric_of(evaluate_gguf(path, policy)["quality"])
            row["gguf_path"] = str(path)
        else:
            row[fmt] = metric_of(evaluate_export(str(path), policy).quality)
    return row


def speed(rows: list[dict], causal: bool) -> None:
    """llama.cpp on this machine, each GGUF against the BF16 one, interleaved rounds, medians."""
    from search.runtimes.llamacpp import LlamaCppModel

    files = {r["candidate"]: r["gguf_path"] for r in rows if r.get("gguf_path")}
    times: dict[str, list[float]] = {k: [] for k in files}
    prompt = "def main():\n    "
    for _ in range(SPEED_ROUNDS):
        for label, path in files.items():
            with LlamaCppModel(path, n_ctx=256, n_threads=2, embeddings=not causal) as model:
                ids = model.tokenize(prompt) or [1]
                if causal:
                    gen = model.generate(ids, max_new_tokens=64)
                    times[label].append(gen.tokens_per_second)
                else:
                    row = (ids * 128)[:128]
                    start = time.perf_counter()
                    model.hidden_states(row)
                    times[label].append((time.perf_counter() - start) * 1000)
    base = statistics.median(times["BF16 (original)"])
    for r in rows:
        if r["candidate"] in times:
            samples = times[r["candidate"]]
            r["speed"] = statistics.median(samples)
            r["speed_spread"] = [min(samples), max(samples)]
            r["speed_vs_bf16"] = (r["speed"] / base) if causal else (base / r["speed"])


def table(rows: list[dict], causal: bool) -> list[str]:
    metric = "KL (lower is better)" if causal else "cosine (higher is better)"
    unit = "decode tok/s" if causal else "encode ms/128 tok"
    lines = [f"| candidate | recipe | scored {metric} | devicefit | hf | gguf (llama.cpp) | MB devicefit / hf / gguf "
             f"| llama.cpp {unit} | × BF16 |", "|---|---|---:|---:|---:|---:|---|---:|---:|"]

    def num(v):  # KL: 3 significant digits (values span 1e-6..1e-1); cosine: 5 decimals
        return "refused" if v is None else (f"{v:.3g}" if causal else f"{v:.5f}")

    def mb(r, fmt):
        return f"{r[f'{fmt}_bytes'] / 1e6:.2f}" if f"{fmt}_bytes" in r else "—"

    for r in rows:
        sp = f"{r['speed']:.1f}" if "speed" in r else "—"
        ratio = f"{r['speed_vs_bf16']:.2f}" if "speed_vs_bf16" in r else "—"
        lines.append(f"| {r['candidate']} | {r['recipe']} | {num(r['scored'])} | {num(r.get('devicefit'))} | "
                     f"{num(r.get('hf'))} | {num(r.get('gguf'))} | {mb(r, 'devicefit')} / {mb(r, 'hf')} / "
                     f"{mb(r, 'gguf')} | {sp} | {ratio} |")
    return lines


def main() -> None:
    import torch

    from search.data_policy import DataPolicy
    from search.evaluation import loaded_model

    torch.set_num_threads(2)
    policy = DataPolicy()
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    results = {"load_before": load, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "models": {}}
    md = ["# Scored vs shipped", "",
          "Quality as the search scores it and as each export gives it back from disk; size on disk; llama.cpp's",
          "speed on this machine (2 threads, medians of interleaved rounds). Regenerate with",
          "`.venv/bin/python bench/scored_vs_shipped.py`. 'refused' = the format cannot express that candidate",
          "exactly, so the export refuses instead of shipping something else (docs/export.md).", "",
          f"Measured {results['date']}; load before: `{load}`.", ""]
    with tempfile.TemporaryDirectory() as tmp:
        for ref in ("demo:tinylm", "demo:minilm"):
            graph = loaded_model(ref).graph
            rows = []
            for label, spec in CANDIDATES.items():
                rows.append(shipped(ref, label, recipe_of(spec, graph), policy, Path(tmp)))
                print(json.dumps({k: v for k, v in rows[-1].items() if k != "gguf_path"}), flush=True)
            speed(rows, graph.is_causal)
            for r in rows:
                r.pop("gguf_path", None)
            results["models"][ref] = rows
            md += [f"## {ref}", "", *table(rows, graph.is_causal), ""]
            notes = [f"- {r['candidate']}, {fmt}: {r[f'{fmt}_note']}" for r in rows for fmt in ("devicefit", "hf", "gguf")
                     if f"{fmt}_note" in r]
            md += (["Refusals:", *notes, ""] if notes else [])
    results["load_after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    md.append(f"Load after: `{results['load_after']}`.")
    (ROOT / "docs" / "scored_vs_shipped.json").write_text(json.dumps(results, indent=2) + "\n")
    (ROOT / "docs" / "scored_vs_shipped.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
