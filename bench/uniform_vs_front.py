"""Does the searched front beat the simplest baselines? Uniform recipes vs the front, one table per setting.

For each setting (model, device, workload, budget) a search runs with the default engine (seeds,
staging, the device's runtime space), then every uniform baseline of that runtime is scored through
the same evaluation path (same data policy) and placed against the front:

- llama.cpp devices: the runtime's own file types (``llama-quantize`` Q8_0, Q6_K, Q5_K_M, Q5_0,
  Q4_K_M, Q4_0, Q3_K_M: their per-tensor mixtures, search.formats.filetypes) -- what a user would
  otherwise ship;
- the PyTorch runtime (``host``): uniform 8/6/5/4/3-bit at group sizes 32 and 128.

For a baseline, "best front" is the best quality among front members at most as slow and at most as
large; the verdict is "dominates" (better quality), "matches" (equal), "loses" (no front member is as
good at that latency and memory), or "over budget" (the baseline itself is not feasible).

    .venv/bin/python bench/uniform_vs_front.py                 # writes docs/uniform_vs_front.{json,md}
    .venv/bin/python bench/uniform_vs_front.py --quick         # 12 trials, minilm on rpi5 only
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DEVICEFIT_RESULTS", str(ROOT / "devicefit-results" / "bench"))

LLAMACPP_FILETYPES = ("Q8_0", "Q6_K", "Q5_K_M", "Q5_0", "Q4_K_M", "Q4_0", "Q3_K_M")
PYTORCH_UNIFORM = [(bits, group) for bits in (8, 6, 5, 4, 3) for group in (32, 128)]

SETTINGS = [
    dict(model="demo:minilm", device="rpi5", workload="encode:128", budget={"max_latency": "40ms"}),
    dict(model="demo:minilm", device="host", workload="encode:128", budget={"max_memory": "40MB"}),
    dict(model="demo:tinylm", device="rpi5", workload="decode:128", budget={"max_memory": "12MB"}),
]


def baselines(graph, caps) -> list[tuple[str, object]]:
    """(label, recipe) of every uniform recipe of the runtime."""
    from search.formats.filetypes import recipe_for_filetype
    from search.recipe import parse_recipe

    if caps.gguf:
        return [(f"llama.cpp {name}", recipe_for_filetype(graph, name)) for name in LLAMACPP_FILETYPES]
    return [(f"uniform {bits}-bit g{group}", parse_recipe({"layers": {"_default": {"bits": bits,
                                                                                   "group_size": group}}}))
            for bits, group in PYTORCH_UNIFORM]


def verdict(base: dict, front: list[dict], better) -> tuple[str, dict | None]:
    if not base["feasible"]:
        return "over budget", None
    near = [c for c in front if c["latency_ms"] <= base["latency_ms"] * (1 + 1e-9)
            and c["memory_bytes"] <= base["memory_bytes"]]
    if not near:
        return "loses", None
    best = near[0]
    for c in near[1:]:
        if better(c["quality"], best["quality"]):
            best = c
    if better(best["quality"], base["quality"]):
        return "dominates", best
    if best["quality"] == base["quality"]:
        return "matches", best
    return "loses", best


def run_setting(setting: dict, trials: int, calib_samples: int) -> dict:
    from search.engine import run_search
    from search.evaluation import evaluate_recipe, loaded_model
    from search.evaluators.quality import primary_metric
    from search.hw_profiles.runtimes import runtime_caps
    from search.spec import SearchSpec
    from search.staging import CheapEvaluator

    spec = SearchSpec(**setting, trials=trials, calib_samples=calib_samples, storage="memory://",
                      study_name=f"uniform-vs-front-{int(time.time())}")
    start = time.perf_counter()
    result = run_search(spec, save=False)
    search_s = time.perf_counter() - start
    metric, direction = result.metric
    better = (lambda a, b: a > b) if direction == "max" else (lambda a, b: a < b)
    front = [{"quality": c.quality[metric], "latency_ms": c.latency_ms, "memory_bytes": c.memory_bytes,
              "recipe": c.recipe.summary(), "seed": c.seed} for c in result.front]
    loaded = loaded_model(spec.model)
    assert primary_metric(loaded.graph) == result.metric
    cheap = CheapEvaluator(spec, loaded.graph)
    rows = []
    for label, recipe in baselines(loaded.graph, runtime_caps(cheap.profile)):
        quality = evaluate_recipe(loaded, recipe, spec.data_policy).quality[metric]
        metrics = cheap(recipe)
        base = {"label": label, "quality": quality, "latency_ms": metrics.latency_ms,
                "memory_bytes": metrics.memory_bytes, "feasible": metrics.feasible}
        base["verdict"], best = verdict(base, front, better)
        base["best_front"] = best
        rows.append(base)
        print(f"  {label:<22} {metric} {quality:.5f}  {metrics.latency_ms:7.2f} ms  "
              f"{metrics.memory_bytes / 1e6:7.2f} MB  -> {base['verdict']}"
              + (f" (front {best['quality']:.5f}: {best['recipe']})" if best else ""), flush=True)
    return {"setting": setting, "trials": trials, "metric": metric, "direction": direction,
            "search_seconds": round(search_s, 1), "front": front, "baselines": rows}


def write_markdown(results: list[dict], path: Path) -> None:
    lines = ["# Uniform baselines vs the searched front", "",
             "Written by `bench/uniform_vs_front.py` (see its docstring for the verdicts).", ""]
    for r in results:
        s = r["setting"]
        lines += [f"## {s['model']} on {s['device']}, {s['workload']}, budget {s['budget']} "
                  f"({r['trials']} trials, {r['search_seconds']:.0f} s)", "",
                  f"| baseline | {r['metric']} | latency ms | memory MB | verdict | best front member "
                  f"at ≤ latency and ≤ memory |", "|---|---|---|---|---|---|"]
        for b in r["baselines"]:
            best = b["best_front"]
            shown = f"{best['quality']:.5f} ({best['recipe']})" if best else "—"
            lines.append(f"| {b['label']} | {b['quality']:.5f} | {b['latency_ms']:.2f} | "
                         f"{b['memory_bytes'] / 1e6:.2f} | {b['verdict']} | {shown} |")
        lines.append("")
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--calib-samples", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="12 trials, the first setting only")
    args = parser.parse_args()
    settings = SETTINGS[:1] if args.quick else SETTINGS
    trials = 12 if args.quick else args.trials
    results = []
    for setting in settings:
        print(f"{setting}", flush=True)
        results.append(run_setting(setting, trials, args.calib_samples))
    out = ROOT / "build" / "uniform_vs_front_quick" if args.quick else ROOT / "docs" / "uniform_vs_front"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    write_markdown(results, out.with_suffix(".md"))
    print(f"wrote {out}.json and .md")


if __name__ == "__main__":
    main()
