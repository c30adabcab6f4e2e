"""Does recovery improve what a search finds? Same task, same trials, same seed: with and without --recover.

Both fronts are scored by hypervolume (search.pareto.hypervolume, all objectives minimised:
the quality loss, latency, memory) against ONE reference point taken from the union of both
fronts' points (the worst value of each objective, plus 10%), so the two numbers compare.

    .venv/bin/python bench/recovery_search.py                 # writes a section of docs/recovery.md
    .venv/bin/python bench/recovery_search.py --trials 8 --recover 30steps --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOC = ROOT / "docs" / "recovery.md"
RAW = ROOT / "docs" / "recovery_search_bench.json"
BEGIN, END = "<!-- bench/recovery_search.py:begin -->", "<!-- bench/recovery_search.py:end -->"


def run(spec_data: dict) -> tuple[object, list[tuple[float, ...]]]:
    from search.candidates import objective_point
    from search.engine import run_search
    from search.executors.local import LocalExecutor
    from search.spec import parse_spec

    spec = parse_spec(spec_data)
    executor = LocalExecutor(workers=1)
    try:
        result = run_search(spec, executor, save=False)
    finally:
        executor.shutdown()
    points = [objective_point(c, spec.objectives, result.metric) for c in result.front]
    return result, points


def main() -> int:
    import torch

    from search.pareto import hypervolume

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo:tinylm")
    parser.add_argument("--device", default="rpi5")
    parser.add_argument("--workload", default="decode:128")
    parser.add_argument("--max-latency", default=None)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--recover", default="40steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("DEVICEFIT_RESULTS", tempfile.mkdtemp(prefix="devicefit-bench-"))
    base = {"model": args.model, "device": args.device, "workload": args.workload, "trials": args.trials,
            "seed": args.seed, "sampler": "nsga2", "space": {"granularity": "model"},
            "budget": {"max_latency": args.max_latency, "max_memory": None},
            "storage": "sqlite:///" + os.path.join(os.environ["DEVICEFIT_RESULTS"], "bench.db")}
    runs = {}
    for label, recover in (("without recovery", None), (f"with --recover {args.recover}", args.recover)):
        started = time.perf_counter()
        result, points = run({**base, "recover": recover, "study_name": f"recovery-bench-{recover or 'none'}"})
        runs[label] = {"result": result, "points": points, "seconds": time.perf_counter() - started}
        print(f"{label}: {len(points)} front points in {runs[label]['seconds']:.0f}s", flush=True)
    every = [p for r in runs.values() for p in r["points"]]
    reference = tuple(max(p[i] for p in every) * 1.1 if max(p[i] for p in every) > 0
                      else max(p[i] for p in every) * 0.9 + 1e-9 for i in range(len(every[0])))
    rows, raw = [], {"reference": reference, "args": vars(args), "runs": {}}
    for label, r in runs.items():
        hv = hypervolume(r["points"], reference)
        res = r["result"]
        recovered = [c for c in res.front if getattr(c, "quality_before_recovery", None)]
        rows.append(f"| {label} | {res.trials} | {len(res.front)} | {len(recovered)} | {hv:.6g} | "
                    f"{r['seconds']:.0f}s |")
        raw["runs"][label] = {"hypervolume": hv, "front": [c.to_json() for c in res.front],
                              "seconds": r["seconds"], "trials": res.trials}
    metric = runs[next(iter(runs))]["result"].metric
    text = "\n".join([
        f"Measured by `bench/recovery_search.py` ({time.strftime('%Y-%m-%d')}, CPU, {args.threads} thread, "
        f"shared machine): {args.model}, {args.workload} on {args.device}, {args.trials} trials, NSGA-II seed "
        f"{args.seed}, one setting for the whole model (granularity model). Hypervolume of (quality loss = "
        f"{metric[0]}{' negated' if metric[1] == 'max' else ''}, latency ms, memory bytes), all minimised, "
        f"against the common reference point {tuple(float(f'{x:.4g}') for x in reference)}; larger is better.",
        "", "| search | trials | front size | recovered on the front | hypervolume | time |", "|---|---|---|---|---|---|",
        *rows])
    print(text)
    if not args.no_write:
        RAW.write_text(json.dumps(raw, indent=1, default=str))
        doc = DOC.read_text()
        if BEGIN not in doc:
            doc += f"\n{BEGIN}\n{END}\n"
        doc = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: f"{BEGIN}\n{text}\n{END}", doc, flags=re.S)
        DOC.write_text(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
