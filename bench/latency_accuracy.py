"""Measured vs predicted latency on this host, for random recipes on demo:minilm and a ~100M Llama.

    .venv/bin/python bench/latency_accuracy.py [--recipes 30] [--rounds 9] [--profile host]

Every recipe is applied (search.compress.apply), then all models of a group are
timed in interleaved rounds (each model once per round, the order shuffled every
round, each timed run right after an untimed one so the model runs warm as it would
when deployed) with one pinned thread and the process CPU clock, and the median of the
rounds is compared with predict_latency on the host profile. Writes
docs/latency_accuracy.json, docs/latency_accuracy.png and the results section of
docs/latency.md. By default the host is profiled afresh right before each chunk of
models is timed (the machine is shared and its speed drifts with the other jobs);
the shipped host.yaml's predictions are reported beside.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from search.hw_profiles import load_profile  # noqa: E402
from search.hw_profiles.latency import predict_latency  # noqa: E402
from search.hw_profiles.measure import DEFAULT_THREADS, pinned_threads, runner, time_ms  # noqa: E402
from search.recipe import CompressionConfig, evenly_spaced_blocks, parse_recipe  # noqa: E402

LLAMA_100M = {"model_type": "llama", "hidden_size": 768, "intermediate_size": 2048, "num_hidden_layers": 12,
              "num_attention_heads": 12, "num_key_value_heads": 4, "vocab_size": 32000,
              "max_position_embeddings": 2048, "tie_word_embeddings": True}
DOCS = ROOT / "docs"
fresh_profiles: list = []  # host profiles measured during the run (--profile fresh)
MARK_START, MARK_END = "<!-- bench:latency_accuracy:start -->", "<!-- bench:latency_accuracy:end -->"


def random_recipe(rng: random.Random, num_blocks: int, mlp_pattern: str) -> CompressionConfig:
    """A random recipe over every axis: bits, groups, sparsity patterns, rank, width, heads, depth."""
    def setting() -> dict:
        pattern = rng.choice(["unstructured", "2:4", "channel"])
        sparsity = 0.5 if pattern == "2:4" else rng.choice([0.0, 0.25, 0.5])
        if rng.random() < 0.4:
            sparsity = 0.0
        return {"bits": rng.choice([16, 8, 6, 4, 3, 2]), "group_size": rng.choice([32, 64, 128]),
                "symmetric": rng.random() < 0.5, "sparsity": sparsity, "sparsity_pattern": pattern,
                "rank": rng.choice([None, None, 0.75, 0.5, 0.25])}
    layers = {"_default": setting()}
    if rng.random() < 0.6:
        layers["re:" + mlp_pattern] = setting()
    depth = rng.choice([1.0, 1.0, 0.83, 0.67, 0.5])
    return parse_recipe({"layers": layers,
                         "width": {"mlp": rng.choice([1.0, 0.75, 0.5, 0.25]), "heads": rng.choice([1.0, 0.75, 0.5])},
                         "keep_blocks": None if depth == 1.0 else list(evenly_spaced_blocks(num_blocks, depth))})


def run_group(name: str, loaded, workload: str, recipes: list[CompressionConfig], profiles: tuple, rounds: int,
              chunk: int, rng: random.Random) -> list[dict]:
    """Rows of measured vs predicted (with profiles[0], or a fresh host profile per chunk when it is None;
    profiles[1] gives predicted_shipped_ms)."""
    from search.compress import apply
    from search.hw_profiles.host import measure_host

    rows = []
    for start in range(0, len(recipes), chunk):
        batch = recipes[start:start + chunk]
        models, runs = [], {}
        t0 = time.time()
        for i, recipe in enumerate(batch):
            model = apply(loaded.model, recipe)
            models.append(model)
            runs[start + i] = runner(model, workload)
        print(f"  {name}: built {len(batch)} models in {time.time() - t0:.0f}s", flush=True)
        if profiles[0] is None:  # 'fresh': profile the host now, within a minute of the timings it predicts
            t0 = time.time()
            predictor = measure_host(rounds=15)
            print(f"  measured a fresh host profile in {time.time() - t0:.0f}s", flush=True)
            fresh_profiles.append(predictor)
        else:
            predictor = profiles[0]
        samples: dict[int, list[float]] = {k: [] for k in runs}
        for fn in runs.values():  # warm-up: also rebuilds and caches the dequantized weights
            fn()
            fn()
        for _ in range(rounds):
            order = list(runs)
            rng.shuffle(order)
            for k in order:
                runs[k]()  # untimed: back into the caches the other models evicted (a deployed model runs warm)
                samples[k].append(time_ms(runs[k], "cpu"))
        for k, values in samples.items():
            recipe = recipes[k]
            predicted = predict_latency(loaded.graph, recipe, workload, predictor).total_ms
            shipped = predict_latency(loaded.graph, recipe, workload, profiles[1]).total_ms
            med = statistics.median(values)
            q = statistics.quantiles(values, n=4)
            rows.append({"model": name, "workload": workload, "recipe": recipe.summary(),
                         "recipe_json": json.loads(recipe.to_json()), "measured_ms": med,
                         "spread_ms": q[2] - q[0], "predicted_ms": predicted, "error": predicted / med - 1,
                         "predicted_shipped_ms": shipped, "error_shipped": shipped / med - 1})
        del models, runs
        gc.collect()
    return rows


def spearman(a: list[float], b: list[float]) -> float:
    def ranks(x: list[float]) -> list[float]:
        order = sorted(range(len(x)), key=lambda i: x[i])
        r = [0.0] * len(x)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.mean(ra), statistics.mean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    var = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / var if var else 0.0


def summarize(rows: list[dict], which: str = "") -> dict:
    errs = [abs(r["error" + which]) for r in rows]
    return {"n": len(rows), "within_10": sum(e <= 0.10 for e in errs) / len(rows),
            "within_20": sum(e <= 0.20 for e in errs) / len(rows), "median_abs_error": statistics.median(errs),
            "spearman": spearman([r["measured_ms"] for r in rows], [r["predicted" + which + "_ms"] for r in rows]),
            "median_relative_spread": statistics.median(r["spread_ms"] / r["measured_ms"] for r in rows)}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6))
    for name, marker in (("demo:minilm", "o"), ("llama-100m", "s")):
        sel = [r for r in rows if r["model"] == name]
        ax.errorbar([r["measured_ms"] for r in sel], [r["predicted_ms"] for r in sel],
                    xerr=[r["spread_ms"] / 2 for r in sel], fmt=marker, ms=4, alpha=0.8,
                    label=f"{name} ({sel[0]['workload']})" if sel else name)
    lo = min(min(r["measured_ms"], r["predicted_ms"]) for r in rows) * 0.8
    hi = max(max(r["measured_ms"], r["predicted_ms"]) for r in rows) * 1.25
    xs = [lo, hi]
    ax.plot(xs, xs, "k-", lw=1, label="predicted = measured")
    ax.fill_between(xs, [x * 0.9 for x in xs], [x * 1.1 for x in xs], color="grey", alpha=0.2, label="±10%")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured latency on this host (ms, median of interleaved rounds)")
    ax.set_ylabel("predicted latency, host profile (ms)")
    ax.set_title("devicefit latency model vs measurement")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_docs(result: dict) -> None:
    doc = DOCS / "latency.md"
    text = doc.read_text() if doc.exists() else f"# Latency\n\n{MARK_START}\n{MARK_END}\n"
    lines = [MARK_START, "",
             f"Run: {result['date']}, {result['recipes']} random recipes per model, {result['rounds']} interleaved "
             f"rounds, {result['threads']} pinned thread, process CPU clock; profile `{result['profile']}`; "
             f"load average during the run {result['load_before']} -> {result['load_after']}.", "",
             "| model | workload | n | within ±10% | within ±20% | median abs error | Spearman | median spread (IQR/median) |",
             "|---|---|---|---|---|---|---|---|"]
    for label, table in ((f"`{result['profile']}` profile", result["summary"]),
                         (f"shipped host.yaml ({result['shipped_host_measured']})", result["summary_shipped_host_yaml"])):
        for key, s in table.items():
            wl = next((r["workload"] for r in result["rows"] if r["model"] == key), "both")
            lines.append(f"| {key}, {label} | {wl} | {s['n']} | {s['within_10']:.0%} | {s['within_20']:.0%} | "
                         f"{s['median_abs_error']:.1%} | {s['spearman']:.3f} | {s['median_relative_spread']:.1%} |")
    lines += ["", "![predicted vs measured](latency_accuracy.png)", "", MARK_END]
    start, end = text.find(MARK_START), text.find(MARK_END)
    if start < 0 or end < 0:
        text = text.rstrip() + "\n\n" + "\n".join(lines) + "\n"
    else:
        text = text[:start] + "\n".join(lines) + text[end + len(MARK_END):]
    doc.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--profile", default="fresh",
                    help="'fresh' (default): measure this host with search-cli profile's benchmarks right before "
                         "timing each chunk of models, so both see the same machine load; or a profile name / file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--llama-workload", default="decode:128")
    ap.add_argument("--minilm-workload", default="encode:128")
    ap.add_argument("--no-docs", action="store_true", help="print only; do not write docs/")
    args = ap.parse_args()

    import os

    from search.models import ByteTokenizer, LoadedModel, build_from_config, load_model, quiet_transformers
    from search.space.graph import graph_from_model

    quiet_transformers()
    rng = random.Random(args.seed)
    load_before = round(os.getloadavg()[0], 1)
    shipped = load_profile("host")
    fresh = args.profile == "fresh"
    profile = None if fresh else load_profile(args.profile)
    rows: list[dict] = []
    with pinned_threads(DEFAULT_THREADS):
        minilm = load_model("demo:minilm")
        recipes = [CompressionConfig()] + [random_recipe(rng, minilm.graph.num_blocks, "intermediate|output\\.dense")
                                           for _ in range(args.recipes - 1)]
        rows += run_group("demo:minilm", minilm, args.minilm_workload, recipes, (profile, shipped), args.rounds, 30,
                          rng)
        del minilm
        gc.collect()
        model = build_from_config(LLAMA_100M)
        llama = LoadedModel(ref="llama-100m", model=model, tokenizer=ByteTokenizer(32000),
                            graph=graph_from_model(model))
        recipes = [CompressionConfig()] + [random_recipe(rng, llama.graph.num_blocks, "mlp")
                                           for _ in range(args.recipes - 1)]
        rows += run_group("llama-100m", llama, args.llama_workload, recipes, (profile, shipped), args.rounds, 10,
                          rng)
    models = ("demo:minilm", "llama-100m")
    if fresh and not args.no_docs:
        DOCS.mkdir(exist_ok=True)
        (DOCS / "latency_host_profile.yaml").write_text(fresh_profiles[-1].to_yaml())
    summary = {name: summarize([r for r in rows if r["model"] == name]) for name in models}
    summary["all"] = summarize(rows)
    summary_shipped = {name: summarize([r for r in rows if r["model"] == name], "_shipped") for name in models}
    summary_shipped["all"] = summarize(rows, "_shipped")
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "profile": args.profile,
              "recipes": args.recipes, "rounds": args.rounds, "threads": DEFAULT_THREADS,
              "load_before": load_before, "load_after": round(os.getloadavg()[0], 1),
              "summary": summary, "summary_shipped_host_yaml": summary_shipped,
              "shipped_host_measured": shipped.measured.date if shipped.measured else None, "rows": rows}
    for label, table in ((args.profile, summary), ("shipped host.yaml", summary_shipped)):
        print(f"profile: {label}")
        for name, s in table.items():
            print(f"  {name:<12} n={s['n']} within10={s['within_10']:.0%} within20={s['within_20']:.0%} "
                  f"median|err|={s['median_abs_error']:.1%} spearman={s['spearman']:.3f} "
                  f"spread={s['median_relative_spread']:.1%}")
    if args.no_docs:
        Path("/tmp/latency_accuracy.json").write_text(json.dumps(result, indent=1))
    else:
        DOCS.mkdir(exist_ok=True)
        (DOCS / "latency_accuracy.json").write_text(json.dumps(result, indent=1))
        plot(rows, DOCS / "latency_accuracy.png")
        write_docs(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
