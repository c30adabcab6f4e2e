"""How good is the front the search finds for a fixed number of full quality evaluations?

Part 1, demo:minilm on rpi5, encode:128, the default budget: arms spend the same number of full
evaluations (bench/efficiency_arms.py), several seeds each:

- devicefit: NSGA-II + seed trials + sensitivity + staged evaluation, as shipped
- evopress: an EvoPress-style (1+λ) evolutionary search over the same parameters (bench/evopress.py)
- uniform: every uniform recipe of the runtime's formats, one full evaluation each (deterministic)
- random: random sampling, every trial fully evaluated (sanity arm)

Every run keeps its full evaluations in order, so the hypervolume after the first k of them is
read from one run (the checkpoints). Hypervolume is on (quality loss = 1 - cosine,
latency / budget, memory / 16-bit memory), reference point (1, 1, 1), relative to the reference
front: the non-dominated union of a long devicefit run (--reference-evals) and every run here.

Part 2 (bench/haq_ratio.py): the HAQ-style ratio on demo:tinylm (--haq-model, e.g. demo:smalllm),
decode:128, rpi5 and jetson-orin-nano; bench/haq_ratio.py alone writes it to docs/haq_ratio_NAME.*.

Evaluations are cached by (model, data, stage, recipe) across arms and seeds (evaluation is
deterministic); each run reports what it asked for and how many models it really built.

    nice -n 5 .venv/bin/python bench/search_efficiency.py            # writes docs/search_efficiency.{json,md}
    ... --part arms & ... --part haq                                 # the two parts as two processes
    .venv/bin/python bench/search_efficiency.py --quick              # a small smoke run (results dir only)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ENV_PREFIX = f"DEVICEFIT_RESULTS={os.environ['DEVICEFIT_RESULTS']} " if "DEVICEFIT_RESULTS" in os.environ else ""
os.environ.setdefault("DEVICEFIT_RESULTS", str(ROOT / "devicefit-results" / "bench"))

from bench.efficiency_arms import (  # noqa: E402 - after the sys.path entry above
    Bench,
    Setting,
    run_engine_arm,
    run_evopress_arm,
    run_uniform_arm,
)
from bench.eval_cache import CachedEvaluate  # noqa: E402
from bench.haq_ratio import haq_table, unbuilt_demo  # noqa: E402

ARMS = ("devicefit", "evopress", "uniform", "random")
REFERENCE_ARM = "reference"  # the long devicefit run


def normalised(point: dict, bench_norm: dict) -> tuple[float, float, float]:
    quality = point["quality"]
    loss = 1.0 - quality["cosine"] if "cosine" in quality else quality["kl"]
    return (loss, point["latency_ms"] / bench_norm["budget_ms"], point["memory_bytes"] / bench_norm["full_bytes"])


def front_points(evaluated: list[dict], k: int | None, norm: dict) -> list[tuple]:
    return [normalised(p, norm) for p in evaluated[:k] if p["feasible"]]


def summarise(runs: list[dict], checkpoints: list[int], norm: dict) -> list[tuple]:
    """Each run's hv (HV / reference) after its first k full evaluations, for each checkpoint k and its
    last; the reference front (returned) is the non-dominated union of every run's feasible points."""
    from search.pareto import hypervolume, non_dominated

    pool = [q for r in runs for q in front_points(r["evaluated"], None, norm)]
    reference = [pool[i] for i in non_dominated(pool)]
    ref_point = (1.0, 1.0, 1.0)
    ref_hv = hypervolume(reference, ref_point)
    for r in runs:
        n = len(r["evaluated"])
        r["hv"] = {str(k): hypervolume(front_points(r["evaluated"], k, norm), ref_point) / ref_hv
                   for k in sorted({*(c for c in checkpoints if c <= n), n})}
    return reference


def median_spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.median(values):.3f} [{min(values):.3f}–{max(values):.3f}]"


def hv_table(runs: list[dict], checkpoints: list[int]) -> list[str]:
    arms = [a for a in (*ARMS, REFERENCE_ARM) if any(r["arm"] == a for r in runs)]
    cols = sorted({int(k) for r in runs for k in r["hv"] if int(k) in checkpoints or r["arm"] == "uniform"})
    lines = ["| arm | seeds | " + " | ".join(f"{c} evals" for c in cols) + " |", "|---|---|" + "---|" * len(cols)]
    for arm in arms:
        mine = [r for r in runs if r["arm"] == arm]
        cells = []
        for c in cols:
            values = [r["hv"][str(c)] for r in mine if str(c) in r["hv"]]
            cells.append(median_spread(values) if values else "")
        lines.append(f"| {arm} | {len(mine)} | " + " | ".join(cells) + " |")
    return lines


def cost_table(runs: list[dict]) -> list[str]:
    lines = ["| arm | seed | full evals | proxies asked | stage-1 rejected | models built (new) | wall s |",
             "|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['arm']} | {r['seed']} | {r['full']} | {r['requests'].get('proxy', 0)} | "
                     f"{r['rejected']} | {r['builds']} | {r['seconds']:.0f} |")
    return lines


def compact(payload: dict) -> dict:
    """The JSON for docs/: every evaluated point keeps its metrics and summary; only the points on the
    reference front keep their whole recipe (the results directory has all of them)."""
    import copy

    from search.pareto import non_dominated

    slim = copy.deepcopy(payload)
    points = [p for r in slim["runs"] for p in r["evaluated"]]
    feasible = [p for p in points if p["feasible"]]
    norm = slim.get("arms", {}).get("setting")
    keep = set()
    if norm and feasible:
        keep = {id(feasible[i]) for i in non_dominated([normalised(p, norm) for p in feasible])}
    for p in points + [p for h in slim["haq"] for p in h["evaluated"]]:
        if id(p) not in keep:
            p.pop("recipe", None)
    return slim


def write_outputs(out: Path, payload: dict, checkpoints: list[int]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "search_efficiency.json").write_text(json.dumps(compact(payload), indent=1))
    runs = payload["runs"]
    lines = ["Hypervolume / reference, median [min–max] over seeds, after k full evaluations:", ""]
    lines += hv_table(runs, checkpoints) if runs else ["(no runs)"]
    for r in runs:
        if r["arm"] == REFERENCE_ARM:
            n = len(r["evaluated"])
            lines += ["", f"The long reference run (devicefit, seed {r['seed']}) made {n} full evaluations "
                          f"(stopped by {r.get('stopped_by')}); after all {n}: {r['hv'][str(n)]:.3f}."]
    lines += ["", "What each run spent:", ""] + cost_table(runs)
    if payload.get("haq"):
        lines += ["", "HAQ-style ratio (uniform 8-bit latency / fastest front member within 1% perplexity):", ""]
        lines += haq_table(payload["haq"])
    commands = list(dict.fromkeys(c for c in (payload.get("command"), payload.get("haq_command")) if c))
    lines += [""] + [f"Command: `{c}`" for c in commands]
    lines += [w for w in payload.get("when", []) if w]
    (out / "search_efficiency.md").write_text("\n".join(lines) + "\n")
    if runs:
        from bench.efficiency_plot import plot

        plot(runs, payload["reference_front"], payload["arms"]["setting"], out / "search_efficiency.png")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=["all", "arms", "haq"], default="all",
                   help="run part 1 (arms), part 2 (haq) or both; parts may run as two processes at once: each "
                        "writes its own results and the report merges whatever exists")
    p.add_argument("--full-evals", type=int, default=50, help="full evaluations per run")
    p.add_argument("--checkpoints", type=int, nargs="+", default=[10, 20, 30, 40, 50])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--random-seeds", type=int, nargs="*", default=None, help="seeds of the random arm (default: --seeds)")
    p.add_argument("--reference-evals", type=int, default=150, help="full evaluations of the long run (0: none)")
    p.add_argument("--reference-deadline", default=None,
                   help="UTC HH:MM by which the long run stops, whatever its count (it runs last)")
    p.add_argument("--evo-targets", type=int, default=3, help="EvoPress level-sum targets (one (1+λ) chain each)")
    p.add_argument("--evo-lambda", type=int, default=2, help="EvoPress offspring per generation")
    p.add_argument("--calib-samples", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--haq-evals", type=int, default=30)
    p.add_argument("--haq-devices", nargs="+", default=["rpi5", "jetson-orin-nano"])
    p.add_argument("--haq-model", default="demo:tinylm")
    p.add_argument("--haq-workload", default="decode:128")
    p.add_argument("--haq-calib-samples", type=int, default=16, help="evaluation rows of the HAQ part (the spec's default)")
    p.add_argument("--haq-seq-len", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="few evaluations, one seed, results dir only (a smoke run)")
    p.add_argument("--out", type=Path, default=None, help="where the .json/.md go (default docs/, or the results "
                                                          "dir with --quick)")
    args = p.parse_args(argv)
    if args.quick:
        args.full_evals, args.checkpoints, args.seeds = 8, [4, 8], [0]
        args.reference_evals, args.haq_evals, args.calib_samples, args.seq_len = 10, 6, 4, 32
        args.haq_calib_samples, args.haq_seq_len = 4, 32
    args.results = Path(os.environ["DEVICEFIT_RESULTS"]) / ("quick" if args.quick else "efficiency")
    args.out = args.out or (args.results if args.quick else ROOT / "docs")
    return args


def deadline_seconds(hhmm: str | None) -> float | None:
    """Seconds from now until today's UTC HH:MM (None: no deadline)."""
    if hhmm is None:
        return None
    hours, minutes = (int(x) for x in hhmm.split(":"))
    now = time.gmtime()
    return (hours * 60 + minutes) * 60 - (now.tm_hour * 3600 + now.tm_min * 60 + now.tm_sec)


def run_arms(args: argparse.Namespace, part: dict, save) -> None:
    from search.memory import memory_report
    from search.models import load_graph
    from search.recipe import CompressionConfig

    evaluate = CachedEvaluate(args.results / "eval-cache-arms.json")
    setting = Setting("demo:minilm", "rpi5", "encode:128", args.calib_samples, args.seq_len)
    bench = Bench(setting, evaluate)
    norm = {"budget_ms": bench.budget_ms,
            "full_bytes": float(memory_report(load_graph(setting.model), CompressionConfig()).total_bytes)}
    part.update(setting=vars(setting) | norm, full_evaluations=args.full_evals, checkpoints=args.checkpoints,
                evo_targets=args.evo_targets, evo_lambda=args.evo_lambda, runs=[])

    def record(run: dict) -> None:
        part["runs"].append(run)
        part["reference_front"] = summarise(part["runs"], args.checkpoints, norm)
        part["evaluate"] = evaluate.counters()
        save()
        print(f"{run['arm']} seed {run['seed']}: full {run['full']}, built {run['builds']}, {run['seconds']:.0f}s, "
              f"HV/ref so far {run['hv']}", flush=True)

    random_seeds = args.seeds if args.random_seeds is None else args.random_seeds
    if "uniform" in args.arms:
        record(run_uniform_arm(bench))
    for seed in args.seeds:  # interleaved: every arm of a seed before the next seed
        if "devicefit" in args.arms:
            record(run_engine_arm(bench, "devicefit", seed, args.full_evals))
        if "evopress" in args.arms:
            record(run_evopress_arm(bench, seed, args.full_evals, args.evo_targets, args.evo_lambda))
        if "random" in args.arms and seed in random_seeds:
            record(run_engine_arm(bench, "random", seed, args.full_evals))
    left = deadline_seconds(args.reference_deadline)
    if args.reference_evals and (left is None or left > 60):
        # last: the long run only sharpens the reference; with a deadline it stops there, whatever its count
        long_run = run_engine_arm(bench, "devicefit", 100, args.reference_evals,
                                  time_limit=None if left is None else f"{int(left)}s")
        long_run["arm"] = REFERENCE_ARM
        record(long_run)


def run_haq(args: argparse.Namespace, part: dict, save) -> None:
    from bench.haq_ratio import haq_ratio

    missing = unbuilt_demo(args.haq_model)
    if missing:  # training a demo takes minutes to an hour on 2 shared cores: not here
        print(f"HAQ part skipped: {args.haq_model} is not built; run `{missing}`", flush=True)
        return
    evaluate = CachedEvaluate(args.results / "eval-cache-haq.json")
    part.update(haq=[], within=1.01, calib_samples=args.haq_calib_samples, seq_len=args.haq_seq_len)
    for device in args.haq_devices:
        result = haq_ratio(device, evaluate, model=args.haq_model, workload=args.haq_workload,
                           full_evals=args.haq_evals, seed=0, calib_samples=args.haq_calib_samples,
                           seq_len=args.haq_seq_len)
        part["haq"].append(result)
        part["evaluate"] = evaluate.counters()
        save()
        print(f"HAQ {device}: ratio {result['ratio']}, any evaluated {result['ratio_any_evaluated']}", flush=True)


def report(args: argparse.Namespace) -> None:
    """docs/search_efficiency.{json,md} from whatever parts have results."""
    parts = {}
    for name in ("arms", "haq"):
        path = args.results / f"part-{name}.json"
        parts[name] = json.loads(path.read_text()) if path.is_file() else {}
    arms, haq = parts["arms"], parts["haq"]
    payload = {"arms": {k: v for k, v in arms.items() if k not in ("runs", "reference_front")},
               "runs": arms.get("runs", []),
               "haq_part": {k: v for k, v in haq.items() if k != "haq"}, "haq": haq.get("haq", [])}
    payload["command"], payload["haq_command"] = arms.get("command", ""), haq.get("command", "")
    payload["when"] = [_when(p) for p in (arms, haq) if p.get("command")]
    payload["reference_front"] = arms.get("reference_front", [])
    write_outputs(args.out, payload, arms.get("checkpoints", args.checkpoints))


def _when(part: dict) -> str:
    """When a part ran and the machine's load average (1/5/15 min) at its start and end, if recorded."""
    if "load_start" not in part:
        return ""
    load = " / ".join(" ".join(f"{x:.2f}" for x in part[k]) for k in ("load_start", "load_end") if k in part)
    return f"Ran {part['started']} – {part.get('finished', '?')}; load average at start / end: {load}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    args.results.mkdir(parents=True, exist_ok=True)
    parts = ["arms", "haq"] if args.part == "all" else [args.part]
    for name in parts:
        part = {"command": f"{ENV_PREFIX}nice -n 5 .venv/bin/python bench/search_efficiency.py " + " ".join(sys.argv[1:]),
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_start": os.getloadavg()}
        path = args.results / f"part-{name}.json"

        def save(part: dict = part, path: Path = path) -> None:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(part, indent=1))
            tmp.replace(path)
            report(args)

        (run_arms if name == "arms" else run_haq)(args, part, save)
        part["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        part["load_end"] = os.getloadavg()
        save()
    print((args.out / "search_efficiency.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
