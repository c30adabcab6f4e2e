"""Worker scaling: trials per minute with 1 vs 2 Celery workers, and the Celery executor's per-trial cost.

What it runs (all on this machine, against a private redis-server it starts):
- a fixed list of candidate recipes for demo:minilm (random points of the search
  space, seed 0), each evaluated in full (stage "full": compress + quality);
- in-process:    LocalExecutor in this process, one trial at a time, 1 torch thread;
- celery 1w/if1: one worker process, one trial in flight (the round trip fully exposed);
- celery 1w:     one worker, the executor's default in-flight (workers + 1 queued);
- celery 2w:     two worker processes, default in-flight (3).
Configurations are interleaved per repeat (the machine is shared and noisy);
medians and min..max are reported. Trial = one full evaluation, so trials/min
here excludes the stage-1 rejections a real search also makes (they never
reach a worker). Workers are started once; the 1-worker runs park the second
worker with Celery's cancel_consumer.

Usage: .venv/bin/python bench/worker_scaling.py [--candidates 8] [--repeats 3]
Writes docs/worker_scaling.json and the figures block of docs/distributed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from search.executor import EvalTask  # noqa: E402
from search.spec import Budget, SearchSpace, SearchSpec  # noqa: E402
from tests.support.services import RedisServer  # noqa: E402

DOC = ROOT / "docs" / "distributed.md"
BEGIN, END = "<!-- worker_scaling:begin -->", "<!-- worker_scaling:end -->"


def start_worker(url: str, name: str, logdir: Path) -> subprocess.Popen:
    log = (logdir / f"{name}.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "search.cli.main", "worker", "--broker", url, "--queues",
                             "general", "--concurrency", "1", "--threads", "1", "--preload", "demo:minilm",
                             "--name", f"{name}@bench", "--loglevel", "warning"],
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=log,
                            stderr=subprocess.STDOUT)
    return proc


def candidates(spec: SearchSpec, n: int) -> list:
    import optuna

    from search.models import load_graph
    from search.space.suggest import RecipeSpace

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = RecipeSpace(load_graph(spec.model), spec.space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    return [space.recipe(study.ask(space.distributions()).params) for _ in range(n)]


def run_batch(executor, spec: SearchSpec, recipes: list, study: str, in_flight: int) -> dict:
    """Evaluate every recipe keeping `in_flight` submitted, like the engine does; wall time and eval times."""
    tasks = [EvalTask(study=study, trial=i, stage="full", spec=spec, recipe=r) for i, r in enumerate(recipes)]
    start = time.perf_counter()
    pending, results = set(), []
    while tasks or pending:
        while tasks and len(pending) < in_flight:
            pending.add(executor.submit(tasks.pop(0)))
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        results += [f.result() for f in done]
    wall = time.perf_counter() - start
    eval_mean = statistics.fmean(r.seconds for r in results)
    return {"wall_s": wall, "trials_per_min": 60 * len(results) / wall,
            "eval_s_median": statistics.median(r.seconds for r in results), "eval_s_mean": eval_mean,
            # what a trial cost beyond its evaluation: messaging, polling, the engine's own work
            "overhead_s_per_trial": wall / len(results) - eval_mean,
            "workers": sorted({r.worker for r in results})}


def set_consuming(app, worker: str, on: bool) -> None:
    from workers.queues import GENERAL

    control = app.control.add_consumer if on else app.control.cancel_consumer
    control(GENERAL, destination=[worker], reply=True, timeout=5)


def summarize(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calib-samples", type=int, default=16)
    parser.add_argument("--out", default=str(ROOT / "docs" / "worker_scaling.json"))
    parser.add_argument("--render", action="store_true", help="only rewrite the docs block from --out")
    args = parser.parse_args()
    if args.render:
        old = json.loads(Path(args.out).read_text())
        args.candidates = old["setup"]["candidates"]
        report = build_report(args, old["runs"], old["pairs"], *(old["machine"][k] for k in ("loadavg_before",
                                                                                            "loadavg_after")))
        report["setup"] = old["setup"]
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        write_doc_block(report)
        return 0
    if shutil.which("redis-server") is None:
        print("redis-server is not installed (run ../shared/services.sh)", file=sys.stderr)
        return 2

    import torch

    torch.set_num_threads(1)  # the in-process baseline gets what one worker process gets
    from search.executors.local import LocalExecutor
    from workers.celery_app import make_app
    from workers.executor import CeleryExecutor

    spec = SearchSpec(model="demo:minilm", device="rpi5", workload="encode:128", budget=Budget(max_latency="1s"),
                      calib_samples=args.calib_samples, seq_len=128,
                      space=SearchSpace(axes=("bits", "sparsity", "rank"), granularity="role"))
    recipes = candidates(spec, args.candidates)
    tmp = Path(tempfile.mkdtemp(prefix="worker-scaling-"))
    redis_server = RedisServer(tmp).start()
    url = redis_server.url
    workers = [start_worker(url, f"w{i}", tmp) for i in (1, 2)]
    app = make_app(url)
    runs: dict[str, list[dict]] = {"in-process": [], "celery 1w/if1": [], "celery 1w": [], "celery 2w": [],
                                   "local pool 2p": []}
    pairs: list[dict] = []
    load_before = os.getloadavg()
    try:
        local = LocalExecutor(workers=1)
        # control without Celery: can two plain processes evaluate twice as fast on this machine?
        pool2 = LocalExecutor(workers=2, threads=1)
        run_batch(pool2, spec, recipes[:2] * 2, "warm-pool", 2)
        with CeleryExecutor(url, max_in_flight=3, poll_interval_s=0.5) as ex:
            deadline = time.monotonic() + 120
            while len(app.control.inspect(timeout=1).ping() or {}) < 2:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"workers did not start; see logs in {tmp}")
            # warm-up: every process loads the model and caches the teacher outputs
            run_batch(local, spec, recipes[:1], "warm-local", 1)
            warm = run_batch(ex, spec, recipes[:2] * 2, "warm-celery", 2)
            print(f"warm-up done on {warm['workers']}", flush=True)
            for rep in range(args.repeats):
                runs["in-process"].append(run_batch(local, spec, recipes, f"local-{rep}", 1))
                set_consuming(app, "w2@bench", False)
                for i, recipe in enumerate(recipes):  # A/B per candidate: both halves see the same load
                    lo = run_batch(local, spec, [recipe], f"pl-{rep}-{i}", 1)
                    ce = run_batch(ex, spec, [recipe], f"pc-{rep}-{i}", 1)
                    pairs.append({"local_s": lo["wall_s"], "local_eval_s": lo["eval_s_mean"],
                                  "celery_s": ce["wall_s"], "celery_eval_s": ce["eval_s_mean"]})
                runs["celery 1w/if1"].append(run_batch(ex, spec, recipes, f"c1a-{rep}", 1))
                runs["celery 1w"].append(run_batch(ex, spec, recipes, f"c1b-{rep}", 2))
                set_consuming(app, "w2@bench", True)
                runs["celery 2w"].append(run_batch(ex, spec, recipes, f"c2-{rep}", 3))
                runs["local pool 2p"].append(run_batch(pool2, spec, recipes, f"p2-{rep}", 2))
                print(f"repeat {rep + 1}: " + ", ".join(f"{k} {v[-1]['trials_per_min']:.1f}/min"
                                                         for k, v in runs.items()), flush=True)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()
        redis_server.stop()
    report = build_report(args, runs, pairs, load_before, os.getloadavg())
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    write_doc_block(report)
    print(json.dumps(report["summary"], indent=2))
    return 0


def build_report(args, runs: dict[str, list[dict]], pairs: list[dict], load_before, load_after) -> dict:
    tpm = {k: summarize([r["trials_per_min"] for r in v]) for k, v in runs.items()}
    per_trial = {k: summarize([r["wall_s"] / args.candidates for r in v]) for k, v in runs.items()}
    # paired per repeat: both runs of a repeat saw roughly the same machine load
    def paired(a: str, b: str) -> list[tuple[dict, dict]]:
        return list(zip(runs[a], runs[b], strict=True))

    speedup = [c2["trials_per_min"] / c1["trials_per_min"] for c1, c2 in paired("celery 1w", "celery 2w")]
    # > 1 means the two processes slowed each other down: not enough free cores for both
    slowdown = [c2["eval_s_mean"] / c1["eval_s_mean"] for c1, c2 in paired("celery 1w", "celery 2w")]
    pool_speedup = [p2["trials_per_min"] / lo["trials_per_min"] for lo, p2 in paired("in-process", "local pool 2p")]
    exposed = [(c["wall_s"] - lo["wall_s"]) / lo["wall_s"] for c, lo in paired("celery 1w/if1", "in-process")]
    queued = [(c["wall_s"] - lo["wall_s"]) / lo["wall_s"] for c, lo in paired("celery 1w", "in-process")]
    # within one run, so machine load between runs cancels: time beyond the evaluation itself
    roundtrip = [r["overhead_s_per_trial"] / r["eval_s_mean"] for r in runs["celery 1w/if1"]]
    local_extra = [r["overhead_s_per_trial"] / r["eval_s_mean"] for r in runs["in-process"]]
    return {
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": load_after,
                    "note": "shared with other jobs; see spread"},
        "setup": {"model": "demo:minilm", "candidates": args.candidates, "repeats": args.repeats,
                  "calib_samples": args.calib_samples, "seq_len": 128, "torch_threads_per_process": 1},
        "runs": runs, "pairs": pairs,
        "summary": {
                    "paired_overhead": summarize([p["celery_s"] / p["local_s"] - 1 for p in pairs]),
                    "paired_roundtrip_s": summarize([p["celery_s"] - p["celery_eval_s"] for p in pairs]),
                    "paired_eval_ratio": summarize([p["celery_eval_s"] / p["local_eval_s"] - 1 for p in pairs]),
                    "paired_local_s": summarize([p["local_s"] for p in pairs]),"trials_per_min": tpm, "seconds_per_trial": per_trial,
                    "speedup_2w_vs_1w": summarize(speedup), "eval_time_2w_vs_1w": summarize(slowdown),
                    "speedup_local_pool_2p_vs_in_process": summarize(pool_speedup),
                    "overhead_in_flight_1": summarize(exposed), "overhead_default_in_flight": summarize(queued),
                    "celery_roundtrip_fraction": summarize(roundtrip),
                    "celery_roundtrip_s": summarize([r["overhead_s_per_trial"] for r in runs["celery 1w/if1"]]),
                    "in_process_extra_fraction": summarize(local_extra)},
    }


def write_doc_block(report: dict) -> None:
    s = report["summary"]

    def span(d: dict, fmt: str = "{:.1f}") -> str:
        return f"{fmt.format(d['median'])} ({fmt.format(d['min'])}..{fmt.format(d['max'])})"

    pct = "{:+.1%}"
    lines = [BEGIN,
             f"Measured by `bench/worker_scaling.py` on this {report['machine']['cpus']}-core machine (shared; "
             f"load average {report['machine']['loadavg_before'][0]:.1f} before, "
             f"{report['machine']['loadavg_after'][0]:.1f} after), demo:minilm, "
             f"{report['setup']['candidates']} full evaluations per run, {report['setup']['repeats']} interleaved "
             "repeats, 1 torch thread per process. Median (min..max):", "",
             "| configuration | trials/min | s/trial |", "|---|---|---|"]
    for k in s["trials_per_min"]:
        lines.append(f"| {k} | {span(s['trials_per_min'][k])} | {span(s['seconds_per_trial'][k], '{:.2f}')} |")
    lines += ["",
              f"- 2 workers vs 1 (paired per repeat): **{span(s['speedup_2w_vs_1w'], '{:.2f}x')}** (target >= 1.8x); "
              f"meanwhile each evaluation took {span(s['eval_time_2w_vs_1w'], '{:.2f}x')} as long with two "
              "workers running as with one (1.0x would mean each had a free core); control without Celery, "
              f"a local pool of 2 processes vs in-process: {span(s['speedup_local_pool_2p_vs_in_process'], '{:.2f}x')}",
              f"- **Per-trial overhead of the Celery executor vs in-process**, A/B per candidate "
              f"({s['paired_overhead']['n']} pairs, one trial in flight, trial "
              f"{span(s['paired_local_s'], '{:.2f} s')} in-process): **{span(s['paired_overhead'], pct)}**; "
              f"of which the message round trip (wall minus the worker's own evaluation time) is "
              f"{span(s['paired_roundtrip_s'], '{:.3f} s')}, and the evaluation itself ran "
              f"{span(s['paired_eval_ratio'], pct)} slower in the worker process than in-process",
              f"- Whole-batch comparison (separate runs, so load drift between runs shows up): one trial in flight "
              f"**{span(s['overhead_in_flight_1'], pct)}**; with one trial queued ahead (default): "
              f"**{span(s['overhead_default_in_flight'], pct)}** (target <= 5%; these compare separate runs, so "
              "machine load between runs shows up here)",
              f"- Celery round trip per trial, measured within each one-in-flight run (wall time per trial minus "
              f"the evaluation time the worker reports): {span(s['celery_roundtrip_s'], '{:.3f} s')} = "
              f"**{span(s['celery_roundtrip_fraction'], pct)}** of a trial (in-process, the same measure: "
              f"{span(s['in_process_extra_fraction'], pct)})",
              END]
    text = DOC.read_text() if DOC.exists() else ""
    block = "\n".join(lines)
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text += "\n" + block + "\n"
    DOC.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
