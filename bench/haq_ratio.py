"""The HAQ-style ratio: how much faster than uniform 8-bit is the search's front at the same quality?

HAQ (Wang et al. 2019) reports 1.4-1.95x lower latency than uniform 8-bit at equal accuracy. Here,
on a bandwidth-bound workload (a causal LM decoding, decode:N): among the front's candidates whose
perplexity is within 1% of uniform 8-bit's (perplexity <= 1.01 x perplexity(uniform 8-bit), on the
same evaluation rows), the lowest predicted latency, as uniform 8-bit's latency / that latency.
Perplexity is used rather than KL because "1% worse" reads directly on it (a KL ratio near 0 is
not a quality ratio).

The budget is the uncompressed model's predicted latency, so every compressed recipe is allowed
and the search is free to trade quality for speed. Uniform 8-bit is the runtime's 8-bit format
(Q8_0 for llama.cpp, 8-bit RTN at the first group size otherwise); where the runtime has no 8-bit
format (MLC: 16/4/3 bits), 8-bit RTN with group size 32 is scored and predicted all the same and
flagged ``reference_runnable: false``. ``quantization_ceiling`` is uniform 8-bit's latency over the
fastest uniform recipe's, whatever its quality: the most quantization alone can give on that workload.

Run on its own (bench/search_efficiency.py --part haq runs the same function into its own report):

    nice -n 5 .venv/bin/python bench/haq_ratio.py --model demo:smalllm     # writes docs/haq_ratio_smalllm.{json,md}
    .venv/bin/python bench/haq_ratio.py --model demo:tinylm --quick         # a smoke run (results dir only)

A trained demo (demo:tinylm, demo:smalllm) must be built first (search-cli demo build NAME): the
bench refuses to spend its time training one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.efficiency_arms import Bench, Setting, run_engine_arm, uniform_params  # noqa: E402

WITHIN = 1.01  # perplexity ratio that counts as "within 1%"


def eight_bit_params(bench: Bench) -> list[dict[str, Any]]:
    """Uniform recipes at 8 bits (Q8_0 in GGUF spaces) with the first (plain) method."""
    out = []
    for params in uniform_params(bench.space):
        recipe = bench.space.recipe(params)
        methods = {getattr(s, "method", None) for s in recipe.layers.values()} - {None}
        if methods - {"rtn"}:
            continue
        settings = list(recipe.layers.values())
        if all(s.format == "Q8_0" or (s.format is None and s.bits == 8) for s in settings):
            out.append(params)
    return out


def haq_ratio(device: str, evaluate: Any, *, model: str, workload: str, full_evals: int, seed: int,
              calib_samples: int, seq_len: int) -> dict[str, Any]:
    from search.recipe import CompressionConfig

    probe = Bench(Setting(model, device, workload, calib_samples, seq_len), evaluate)
    uncompressed_ms = probe.cheap(probe.space.recipe(probe.base)).latency_ms
    bench = Bench(Setting(model, device, workload, calib_samples, seq_len,
                          max_latency=f"{uncompressed_ms * 1.0001:.4f}ms"), evaluate)
    references = [bench.full(bench.space.recipe(p), "haq-8bit", i) for i, p in enumerate(eight_bit_params(bench))]
    runnable = bool(references)
    if not references:
        recipe = CompressionConfig.uniform(bits=8, group_size=32)
        references = [bench.full(recipe, "haq-8bit", 0)]
    # the strictest 8-bit reference: the best-quality one (they differ only in group size)
    reference = min(references, key=lambda p: p["quality"]["perplexity"])
    run = run_engine_arm(bench, "devicefit", seed, full_evals)
    threshold = reference["quality"]["perplexity"] * WITHIN
    from search.pareto import non_dominated

    feasible = [p for p in run["evaluated"] if p["feasible"]]
    objectives = [(bench.loss(p["quality"]), p["latency_ms"], p["memory_bytes"]) for p in feasible]
    front = [feasible[i] for i in non_dominated(objectives)]

    def fastest(points: list[dict[str, Any]]) -> dict[str, Any] | None:
        within = [p for p in points if p["quality"]["perplexity"] <= threshold]
        return min(within, key=lambda p: p["latency_ms"]) if within else None

    best, best_any = fastest(front), fastest(feasible)
    # what quantization alone could give at any quality: the fastest uniform recipe of the runtime's formats
    fastest_uniform = min(bench.cheap(bench.space.recipe(p)).latency_ms for p in uniform_params(bench.space))
    return {"device": device, "model": model, "workload": workload, "budget_ms": bench.budget_ms,
            "reference": reference, "reference_runnable": runnable, "threshold_perplexity": threshold,
            "best": best, "ratio": reference["latency_ms"] / best["latency_ms"] if best else None,
            "best_any_evaluated": best_any,
            "ratio_any_evaluated": reference["latency_ms"] / best_any["latency_ms"] if best_any else None,
            "quantization_ceiling": reference["latency_ms"] / fastest_uniform,
            "front_size": len(front), "run": {k: v for k, v in run.items() if k != "evaluated"},
            "evaluated": run["evaluated"]}


def haq_table(haq: list[dict]) -> list[str]:
    lines = ["| device | uniform 8-bit | its perplexity / latency | fastest front member within 1% | "
             "perplexity / latency | ratio (front) | ratio (any evaluated) | quantization-only ceiling | full evals |",
             "|---|---|---|---|---|---|---|---|---|"]
    for h in haq:
        ref, best = h["reference"], h["best"]
        ref_name = ref["summary"] + ("" if h["reference_runnable"] else " (not a runtime format)")
        best_cells = (f"{best['summary']} | {best['quality']['perplexity']:.3f} / {best['latency_ms']:.2f} ms"
                      if best else "none | –")
        ratio = f"{h['ratio']:.2f}x" if h["ratio"] else "–"
        ratio_any = f"{h['ratio_any_evaluated']:.2f}x" if h["ratio_any_evaluated"] else "–"
        lines.append(f"| {h['device']} | {ref_name} | {ref['quality']['perplexity']:.3f} / "
                     f"{ref['latency_ms']:.2f} ms | {best_cells} | {ratio} | {ratio_any} | "
                     f"{h.get('quantization_ceiling', float('nan')):.2f}x | {h['run']['full']} |")
    return lines


def unbuilt_demo(model: str) -> str | None:
    """The build command for a trained demo that is not built yet (None: nothing to build)."""
    from search.demos import BUILT_DEMOS, demo_path, is_built

    name = model.removeprefix("demo:")
    if model.startswith("demo:") and name in BUILT_DEMOS and not is_built(demo_path(name)):
        return f"search-cli demo build {name}"
    return None


def cache_tag(model: str) -> str:
    """A file-name tag for the evaluation cache: a trained demo's recipe key, so a retrained demo
    never reads the qualities of the previous weights."""
    from search.demos import BUILT_DEMOS

    name = model.removeprefix("demo:")
    if model.startswith("demo:") and name in BUILT_DEMOS:
        return f"{name}-{BUILT_DEMOS[name].key()}"
    return "".join(c if c.isalnum() else "_" for c in model)[-60:]


def uncommitted(path: str) -> list[str]:
    """Tracked files under path that differ from the commit (others edit the checkout while a bench runs)."""
    import subprocess

    out = subprocess.run(["git", "diff", "--name-only", "HEAD", "--", path], capture_output=True, text=True,
                         cwd=ROOT, check=False).stdout
    return out.split()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="demo:smalllm", help="a causal LM reference (default demo:smalllm)")
    p.add_argument("--devices", nargs="+", default=["rpi5", "jetson-orin-nano"])
    p.add_argument("--workload", default="decode:128")
    p.add_argument("--full-evals", type=int, default=50, help="full evaluations of the devicefit run per device")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--calib-samples", type=int, default=16, help="evaluation rows (the spec's default)")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--quick", action="store_true", help="6 evaluations on 4 x 32 tokens, results dir only")
    p.add_argument("--out", type=Path, default=None, help="where haq_ratio_NAME.{json,md} go (default docs/)")
    args = p.parse_args(argv)
    if args.quick:
        args.full_evals, args.calib_samples, args.seq_len = 6, 4, 32
    results = Path(os.environ.get("DEVICEFIT_RESULTS", ROOT / "devicefit-results" / "bench"))
    args.results = results / ("haq-quick" if args.quick else "haq")
    args.out = args.out or (args.results if args.quick else ROOT / "docs")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("DEVICEFIT_RESULTS", str(args.results.parent))  # where run_search would write
    missing = unbuilt_demo(args.model)
    if missing:
        print(f"error: {args.model} is not built; run `{missing}` first", file=sys.stderr)
        return 2
    import torch

    from bench.eval_cache import CachedEvaluate
    from bench.provenance import git_commit

    torch.set_num_threads(args.threads)
    args.results.mkdir(parents=True, exist_ok=True)
    evaluate = CachedEvaluate(args.results / f"eval-cache-{cache_tag(args.model)}.json")
    name = "".join(c if c.isalnum() else "_" for c in args.model.removeprefix("demo:"))[-60:]
    payload: dict[str, Any] = {
        "command": "nice -n 5 .venv/bin/python bench/haq_ratio.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "commit": git_commit(), "uncommitted_search_files": uncommitted("search"), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_before": os.getloadavg(), "model": args.model, "within": WITHIN, "calib_samples": args.calib_samples,
        "seq_len": args.seq_len, "threads": args.threads, "haq": []}
    for device in args.devices:
        result = haq_ratio(device, evaluate, model=args.model, workload=args.workload, full_evals=args.full_evals,
                           seed=args.seed, calib_samples=args.calib_samples, seq_len=args.seq_len)
        payload["haq"].append(result)
        print(f"HAQ {device}: ratio {result['ratio']}, any evaluated {result['ratio_any_evaluated']}, "
              f"ceiling {result['quantization_ceiling']:.2f}, {result['run']['seconds']}s", flush=True)
    payload.update(finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), load_after=os.getloadavg(),
                   evaluate=evaluate.counters())
    slim = json.loads(json.dumps(payload))  # a copy that shares no dicts (best is also in evaluated)
    for h in slim["haq"]:  # whole recipes only for the reference and the winner (the cache has the rest)
        for point in h["evaluated"]:
            point.pop("recipe", None)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"haq_ratio_{name}.json").write_text(json.dumps(slim, indent=1))
    load = ", ".join(f"{x:.2f}" for x in payload["load_before"]) + " before; " + \
        ", ".join(f"{x:.2f}" for x in payload["load_after"]) + " after"
    lines = [f"HAQ-style ratio on {args.model}, {args.workload} (uniform 8-bit latency / fastest front member "
             f"within {WITHIN - 1:.0%} perplexity):", "", *haq_table(payload["haq"]), "",
             f"Command: `{payload['command']}`", "",
             f"{payload['started']} – {payload['finished']}, commit {payload['commit']}, load average {load}."]
    if payload["uncommitted_search_files"]:
        lines += ["", "Uncommitted changes under search/ while it ran: " + ", ".join(payload["uncommitted_search_files"])]
    (args.out / f"haq_ratio_{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
