"""``search-cli search`` (and bare ``search-cli``): find the Pareto front of recipes that fit a budget.

The flags only fill in a SearchSpec (the one request schema); --spec FILE gives
the whole spec as JSON and flags override its fields.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from search.cli.text_args import add_text_args
from search.data import read_text_file
from search.errors import InfeasibleError, SpecError
from search.spec import SearchSpec, parse_spec

TIME_ONLY_TRIALS = 100_000  # --time without --trials: the time limit is what stops the search


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "search", help="search compression recipes for a device and budget (the default command)",
        description="Search per-layer compression recipes (bits, sparsity, rank, width, depth) for the Pareto "
                    "front of quality, latency and memory within a budget on a device.")
    p.add_argument("--spec", metavar="FILE", help="a SearchSpec as JSON; the flags below override its fields")
    p.add_argument("--model", metavar="REF", help="directory, config.json, Hub id or demo:minilm (default)")
    p.add_argument("--device", metavar="NAME", help="device profile (default rpi5; see search-cli predict --help)")
    p.add_argument("--workload", metavar="W", help="encode:N, prefill:N or decode:N (default encode:128)")
    p.add_argument("--max-latency", metavar="T", help="latency budget with a unit, e.g. 200ms or 1.5s")
    p.add_argument("--max-memory", metavar="S", help="memory budget with a unit, e.g. 64MB or 1GB")
    stop = p.add_mutually_exclusive_group()
    stop.add_argument("--trials", type=int, metavar="N", help="number of trials (default 40)")
    stop.add_argument("--time", metavar="T", help="search for this long instead, e.g. 10m")
    p.add_argument("--sampler", choices=["nsga2", "tpe", "gp", "random"], help="default nsga2")
    p.add_argument("--granularity", choices=["layer", "block", "role", "model"],
                   help="one choice per layer, block, role (default) or for the whole model")
    p.add_argument("--seed", type=int, help="random seed of the sampler (default 0)")
    p.add_argument("--storage", metavar="URL", help="Optuna storage (default sqlite:///devicefit-results/studies.db)")
    p.add_argument("--study", metavar="NAME", help="study name (default: derived from the search)")
    p.add_argument("--resume", action="store_true", help="continue the latest study of this search")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="evaluate N candidates at once in worker processes (default 1: in this process)")
    p.add_argument("--broker", metavar="URL",
                   help="evaluate candidates on Celery workers (search-cli worker) through this Redis, "
                        "e.g. redis://127.0.0.1:6379/0 (see docs/distributed.md)")
    p.add_argument("--recover", metavar="BUDGET",
                   help="recovery training (distillation / QAT) of candidates near the front, per candidate: "
                        "e.g. 200steps or 30s; the front is built on the recovered metrics")
    add_text_args(p)
    p.add_argument("--measure", action="store_true",
                   help="time each evaluated candidate on this machine (or on a device worker with --broker) "
                        "instead of trusting the predicted latency")
    p.add_argument("--json", action="store_true", help="print the front as one JSON object")
    p.add_argument("--server", metavar="URL",
                   help="submit to a running devicefit service (search-cli serve) instead of searching here")
    p.set_defaults(func=run)


def spec_from_args(args: argparse.Namespace) -> SearchSpec:
    data: dict[str, Any] = {}
    if args.spec:
        path = Path(args.spec)
        if not path.is_file():
            raise SpecError(f"spec file {args.spec!r} does not exist")
        data = parse_spec(path.read_text()).model_dump(mode="json", exclude_unset=True)
    for flag, field in (("model", "model"), ("device", "device"), ("workload", "workload"), ("trials", "trials"),
                        ("sampler", "sampler"), ("seed", "seed"), ("storage", "storage"), ("study", "study_name"),
                        ("recover", "recover")):
        if getattr(args, flag) is not None:
            data[field] = getattr(args, flag)
    if args.max_latency is not None or args.max_memory is not None:
        # budget flags replace the default budget as a whole: --max-memory alone means no latency budget
        data["budget"] = {"max_latency": args.max_latency, "max_memory": args.max_memory}
    if args.measure:
        data["measure"] = True
    if args.time is not None:
        data["time_limit"] = args.time
        data.setdefault("trials", TIME_ONLY_TRIALS)
    if args.granularity is not None:
        data["space"] = {**data.get("space", {}), "granularity": args.granularity}
    if getattr(args, "calibration", None):
        data["calibration_text"] = read_text_file(args.calibration)
    if getattr(args, "eval_text", None):
        data["eval_text"] = read_text_file(args.eval_text, "evaluation text")
    return parse_spec(data)


def run(args: argparse.Namespace) -> int:
    from search.cli.front_table import front_heading, front_table
    from search.engine import preflight, run_search
    from search.evaluation import check_eval_rows
    from search.executors.local import LocalExecutor

    spec = spec_from_args(args)
    if getattr(args, "server", None):  # the service validates and runs it (search/cli/remote.py)
        from search.cli.remote import run_remote

        return run_remote(spec, args.server, as_json=args.json, bar_factory=_ProgressBar)
    if args.workers < 1:
        raise SpecError("--workers must be at least 1")
    preflight(spec)  # bad model, device or budget: one line before any progress bar
    check_eval_rows(spec.model, spec.data_policy)  # an --eval-text too short for the rows, from the tokenizer
    executor = _broker_executor(args) if getattr(args, "broker", None) else LocalExecutor(workers=args.workers)
    with _ProgressBar(spec) as bar:
        result = run_search(spec, executor, progress=bar.update, resume=args.resume)
    if not result.front:
        raise InfeasibleError(_nothing_fits(spec, result))
    payload = result.to_json()
    if args.json:
        print(json.dumps(payload))
        return 0
    metric = result.metric[0]
    print(front_heading(len(result.front), spec.model_dump(mode="json"), metric, result.metric[1] == "max"))
    print(front_table(payload["front"], metric))
    print(f"{result.trials} trials: {result.rejected} rejected from the recipe alone, {result.proxy_evaluations} "
          f"quality proxies, {result.full_evaluations} full evaluations; {result.seconds:.0f}s")
    print(f"saved to {result.results_path} (study {result.study}, storage {result.storage})")
    print(f"show again: search-cli show {result.study}    export one: search-cli export {result.study} "
          f"--candidate 0 --out DIR")
    return 0


def _nothing_fits(spec: SearchSpec, result: Any) -> str:
    from search.cli.front_table import budget_text, recipe_text
    from search.units import format_bytes, format_ms

    c = result.closest
    if c is None:
        return f"no candidate was evaluated within the budget ({budget_text(spec.budget.model_dump())}) in {result.trials} trials"
    need = []
    if spec.budget.latency_ms is not None and c.latency_ms > spec.budget.latency_ms:
        need.append(f"max_latency {spec.budget.max_latency} (it takes {format_ms(c.latency_ms)})")
    if spec.budget.memory_bytes is not None and c.memory_bytes > spec.budget.memory_bytes:
        need.append(f"max_memory {spec.budget.max_memory} (it needs {format_bytes(c.memory_bytes)})")
    return (f"no candidate met {' and '.join(need) or 'the budget'} in {result.trials} trials: that is the closest "
            f"candidate, {recipe_text(c.recipe.model_dump(mode='json'))}; relax the budget or search longer")


class _ProgressBar:
    """tqdm on stderr: trials done, feasible, front size; its ETA comes from the trial rate."""

    def __init__(self, spec: SearchSpec):
        self.spec = spec
        self.bar: Any = None

    def __enter__(self) -> _ProgressBar:
        from tqdm import tqdm

        total = None if self.spec.trials >= TIME_ONLY_TRIALS else self.spec.trials
        self.bar = tqdm(total=total, desc="search", unit="trial", file=sys.stderr, dynamic_ncols=True,
                        mininterval=0.5)
        return self

    def update(self, progress: Any) -> None:
        self.bar.n = progress.completed
        self.bar.set_postfix(feasible=progress.feasible, front=progress.front_size,
                             full=progress.full_evaluations, refresh=False)
        self.bar.refresh()

    def __exit__(self, *exc: Any) -> None:
        self.bar.close()


def _broker_executor(args: argparse.Namespace) -> Any:
    """--broker: candidates go to Celery workers (workers/executor.py, imported only when asked for)."""
    if args.workers != 1:
        raise SpecError("--workers counts local processes; with --broker start more `search-cli worker`s instead")
    from workers.executor import executor_from_url

    return executor_from_url(args.broker)
