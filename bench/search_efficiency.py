"""How good is the front the search finds for a fixed number of full quality evaluations?

demo:minilm on rpi5, encode:128, the default budget. Three ways to spend the same
number of full evaluations, each with several seeds:

- devicefit: NSGA-II + seed trials + sensitivity + staged evaluation (stage 1
  rejects over-budget recipes without a model, stage 2 proxies gate stage 3)
- random: random sampling, every trial fully evaluated
- nsga2-plain: NSGA-II without seeds, sensitivity or staging

Hypervolume is computed on (1 - cosine, latency / budget, memory / 16-bit
memory), reference point (1, 1, 1), and reported relative to the reference front:
the non-dominated union of every feasible, fully evaluated candidate of every run.

Evaluations are cached by (stage, recipe) across runs (identical recipes give
identical results: evaluation is deterministic), so runs that propose the same
recipe pay once; the counts of evaluations each run *asked for* are reported.

    .venv/bin/python bench/search_efficiency.py            # writes docs/search_efficiency.{json,md,png}
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

ARMS = {
    "devicefit": dict(sampler="nsga2", staged=True, seed_trials=True, use_sensitivity=True),
    "random": dict(sampler="random", staged=False, seed_trials=False, use_sensitivity=False),
    "nsga2-plain": dict(sampler="nsga2", staged=False, seed_trials=False, use_sensitivity=False),
}


class CachedEvaluate:
    """evaluate() memoised on disk by (stage, recipe): re-runs and repeated recipes cost nothing."""

    def __init__(self, path: Path):
        self.path = path
        self.cache = json.loads(path.read_text()) if path.is_file() else {}
        self.hits = self.misses = 0

    def __call__(self, task):
        from search.evaluation import evaluate_task as evaluate
        from search.executor import EvalResult

        key = f"{task.stage}|{task.recipe.to_json()}"
        if key in self.cache:
            self.hits += 1
            return EvalResult(key=task.key, **self.cache[key])
        self.misses += 1
        result = evaluate(task)
        self.cache[key] = {"quality": result.quality, "memory_bytes": result.memory_bytes, "seconds": result.seconds}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.cache))
        tmp.replace(self.path)
        return result


def normalised(point: dict, budget_ms: float, full_bytes: float) -> tuple[float, float, float]:
    return (1.0 - point["cosine"], point["latency_ms"] / budget_ms, point["memory_bytes"] / full_bytes)


def run_arm(arm: str, seed: int, args, evaluate) -> dict:
    from search.engine import run_search
    from search.executors.local import LocalExecutor
    from search.spec import SearchSpec

    opts = dict(ARMS[arm])
    staged = opts["staged"]
    spec = SearchSpec(model="demo:minilm", device="rpi5", workload="encode:128", seed=seed,
                      sampler=opts.pop("sampler"), trials=100_000 if staged else args.full_evals,
                      calib_samples=args.calib_samples, seq_len=args.seq_len, storage="memory://",
                      study_name=f"bench-{arm}-{seed}-{int(time.time())}")
    start = time.perf_counter()
    result = run_search(spec, LocalExecutor(evaluate_fn=evaluate), max_full_evaluations=args.full_evals,
                        save=False, **opts)
    from optuna import load_study

    from search.candidates import Candidate
    from search.study import make_storage

    study = load_study(study_name=result.study, storage=make_storage(spec.storage))
    candidates = [c for c in (Candidate.from_trial(t, result.metric) for t in study.get_trials()) if c is not None]
    evaluated = [{"cosine": c.quality["cosine"], "latency_ms": c.latency_ms, "memory_bytes": c.memory_bytes,
                  "summary": c.recipe.summary()} for c in candidates if c.stage == "full" and c.feasible]
    return {"arm": arm, "seed": seed, "budget_ms": spec.budget.latency_ms, "seconds": time.perf_counter() - start,
            "trials": result.trials, "full": result.full_evaluations, "proxy": result.proxy_evaluations,
            "rejected": result.rejected, "front": [{"cosine": c.quality["cosine"], "latency_ms": c.latency_ms,
                                                   "memory_bytes": c.memory_bytes, "summary": c.recipe.summary()}
                                                  for c in result.front],
            "feasible_points": evaluated}


def summarise(runs: list[dict], full_bytes: float) -> tuple[list[dict], list[tuple]]:
    from search.pareto import hypervolume, non_dominated

    budget = runs[0]["budget_ms"]
    pool = [normalised(p, budget, full_bytes) for r in runs for p in r["feasible_points"]]
    reference = [pool[i] for i in non_dominated(pool)]
    ref_point = (1.0, 1.0, 1.0)
    ref_hv = hypervolume(reference, ref_point)
    for r in runs:
        hv = hypervolume([normalised(p, budget, full_bytes) for p in r["front"]], ref_point)
        r["hypervolume"], r["hv_ratio"] = hv, hv / ref_hv if ref_hv else 0.0
    return runs, reference


def write_outputs(runs: list[dict], reference: list[tuple], args, full_bytes: float) -> None:
    docs = ROOT / "docs"
    (docs / "search_efficiency.json").write_text(json.dumps(
        {"runs": runs, "reference_front": reference, "full_evaluations": args.full_evals,
         "calib_samples": args.calib_samples, "seq_len": args.seq_len, "memory_16bit_bytes": full_bytes}, indent=1))
    # wall time is left out of the table: cached evaluations make it meaningless (it is in the JSON)
    lines = ["| arm | seed | HV / reference | front size | trials | stage-1 rejected | proxies | full evals |",
             "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['arm']} | {r['seed']} | {r['hv_ratio']:.3f} | {len(r['front'])} | {r['trials']} | "
                     f"{r['rejected']} | {r['proxy']} | {r['full']} |")
    by_arm: dict[str, list[float]] = {}
    for r in runs:
        by_arm.setdefault(r["arm"], []).append(r["hv_ratio"])
    lines += ["", "| arm | mean HV / reference | min | max |", "|---|---|---|---|"]
    for arm, ratios in by_arm.items():
        lines.append(f"| {arm} | {sum(ratios) / len(ratios):.3f} | {min(ratios):.3f} | {max(ratios):.3f} |")
    (docs / "search_efficiency.md").write_text("\n".join(lines) + "\n")
    plot(runs, reference, docs / "search_front.png")


def plot(runs: list[dict], reference: list[tuple], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seed = runs[0]["seed"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ref = sorted(reference, key=lambda p: p[1])
    ax.scatter([p[1] for p in ref], [p[0] for p in ref], s=70, facecolors="none", edgecolors="k",
               label="reference (union of all runs)")
    for r, marker in zip([r for r in runs if r["seed"] == seed], "o^s", strict=False):
        pts = [normalised(p, r["budget_ms"], 1.0) for p in r["front"]]
        ax.scatter([p[1] for p in pts], [p[0] for p in pts], marker=marker, s=22, alpha=0.8,
                   label=f"{r['arm']} (seed {seed}, HV {r['hv_ratio']:.2f})")
    ax.set_yscale("log")
    ax.set_xlabel("predicted latency / budget (rpi5, encode:128)")
    ax.set_ylabel("1 - cosine to the 16-bit model (log)")
    ax.set_title("demo:minilm fronts (latency-quality projection of 3 objectives)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full-evals", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--calib-samples", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--merge", type=Path, nargs="*", default=[],
                        help="runs.json files of other invocations (e.g. seeds run in another process) to include")
    parser.add_argument("--cache", type=Path, default=ROOT / "devicefit-results" / "bench" / "eval-cache.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from search.memory import memory_report
    from search.models import load_graph
    from search.recipe import CompressionConfig

    full_bytes = float(memory_report(load_graph("demo:minilm"), CompressionConfig()).total_bytes)
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    evaluate = CachedEvaluate(args.cache)
    runs_path = args.cache.parent / "runs.json"
    runs = json.loads(runs_path.read_text()) if runs_path.is_file() else []
    for extra in args.merge:
        seen = {(r["arm"], r["seed"]) for r in runs}
        runs += [r for r in json.loads(extra.read_text()) if (r["arm"], r["seed"]) not in seen]
    # a stored run counts only if it spent this invocation's budget of full evaluations
    runs = [r for r in runs if r["full"] == args.full_evals]
    done = {(r["arm"], r["seed"]) for r in runs}
    for seed in args.seeds:  # interleaved: every arm of a seed before the next seed
        for arm in args.arms:
            if (arm, seed) in done:
                continue
            run = run_arm(arm, seed, args, evaluate)
            runs.append(run)
            runs_path.write_text(json.dumps(runs))
            print(f"{arm} seed {seed}: front {len(run['front'])}, full {run['full']}, proxy {run['proxy']}, "
                  f"rejected {run['rejected']}, {run['seconds']:.0f}s (cache {evaluate.hits} hits, "
                  f"{evaluate.misses} misses)", flush=True)
            summarised, reference = summarise([dict(r) for r in runs], full_bytes)
            write_outputs(summarised, reference, args, full_bytes)
    runs.sort(key=lambda r: (r["seed"], list(ARMS).index(r["arm"])))
    summarised, reference = summarise(runs, full_bytes)
    write_outputs(summarised, reference, args, full_bytes)
    for r in summarised:
        print(f"{r['arm']:12s} seed {r['seed']}: HV/ref {r['hv_ratio']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
