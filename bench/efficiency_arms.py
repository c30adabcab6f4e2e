"""The arms of bench/search_efficiency.py: ways to spend a number of full quality evaluations.

Every arm works through the public search pieces (run_search with a custom executor, RecipeSpace,
the stage-1 CheapEvaluator, evaluate_task via the cached evaluate hook), so changes to the space,
the seeds or the evaluation show up here without edits. Each run returns the same record: its
fully evaluated candidates *in evaluation order*, so the front after the first k evaluations
(an anytime curve) can be read from one run.

- devicefit: run_search as shipped (seed trials, guided proposals with NSGA-II behind them, sensitivity,
  staged evaluation)
- random: run_search with random sampling, every trial fully evaluated (a sanity arm)
- evopress: bench/evopress.py's (1+λ) chains over the same parameters
- uniform: every uniform recipe of the runtime's formats (bench-side enumeration, below)
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

ENGINE_ARMS = {
    "devicefit": dict(sampler="nsga2", staged=True, seed_trials=True, use_sensitivity=True),
    "random": dict(sampler="random", staged=False, seed_trials=False, use_sensitivity=False, guided=False),
}
QUANT_SUFFIXES = ("bits", "format", "group", "method")  # the per-group settings a uniform recipe shares


@dataclass(frozen=True)
class Setting:
    model: str
    device: str
    workload: str
    calib_samples: int
    seq_len: int
    max_latency: str | None = None  # None: the spec's default budget


class Bench:
    """One model x device x workload: its space, stage-1 predictor, metric, and the shared evaluate hook."""

    def __init__(self, setting: Setting, evaluate: Any):
        from search.evaluators.quality import primary_metric
        from search.hw_profiles.runtimes import runtime_caps
        from search.models import load_graph
        from search.space.suggest import RecipeSpace
        from search.staging import CheapEvaluator

        self.setting, self.evaluate = setting, evaluate
        spec = self.spec(0)
        self.graph = load_graph(spec.model)
        self.cheap = CheapEvaluator(spec, self.graph)
        self.space = RecipeSpace(self.graph, spec.space, runtime_caps(self.cheap.profile))
        self.metric = primary_metric(self.graph)
        self.budget_ms = spec.budget.latency_ms
        self.base = {name: options[0] for name, options in self.space.choices.items()}
        top = self.cheap(self.space.recipe(self.base))  # the least compressed recipe: the cost scale
        self.top_latency, self.top_memory = top.latency_ms, top.memory_bytes

    def spec(self, seed: int, **overrides: Any):
        from search.spec import Budget, SearchSpec

        s = self.setting
        extra = {"budget": Budget(max_latency=s.max_latency)} if s.max_latency else {}
        return SearchSpec(model=s.model, device=s.device, workload=s.workload, seed=seed, calib_samples=s.calib_samples,
                          seq_len=s.seq_len, storage="memory://", **extra, **overrides)

    def loss(self, quality: dict[str, float]) -> float:
        value = quality[self.metric[0]]
        return 1.0 - value if self.metric[1] == "max" else value

    def point(self, recipe: Any, quality: dict[str, float]) -> dict[str, Any]:
        cheap = self.cheap(recipe)
        return {"quality": quality, "latency_ms": cheap.latency_ms, "memory_bytes": cheap.memory_bytes,
                "feasible": cheap.feasible, "summary": recipe.summary(), "recipe": recipe.to_json()}

    def full(self, recipe: Any, study: str, trial: int) -> dict[str, Any]:
        from search.executor import EvalTask

        result = self.evaluate(EvalTask(study=study, trial=trial, stage="full", spec=self.spec(0), recipe=recipe))
        return self.point(recipe, result.quality)

    def relative_cost(self, params: dict[str, Any]) -> float:
        cheap = self.cheap(self.space.recipe(params))
        return cheap.latency_ms / self.top_latency + cheap.memory_bytes / self.top_memory


def _counted(bench: Bench, run: Any) -> tuple[Any, dict[str, Any]]:
    """Run ``run()`` and what it asked the evaluate hook for (requests per stage, real builds, seconds)."""
    before = dict(bench.evaluate.requests), bench.evaluate.builds
    start = time.perf_counter()
    out = run()
    requests = {k: v - before[0].get(k, 0) for k, v in bench.evaluate.requests.items() if v - before[0].get(k, 0)}
    return out, {"requests": requests, "builds": bench.evaluate.builds - before[1],
                 "seconds": round(time.perf_counter() - start, 1)}


def run_engine_arm(bench: Bench, arm: str, seed: int, full_evals: int, **spec: Any) -> dict[str, Any]:
    """devicefit or random through run_search; its fully evaluated candidates in trial order.
    spec: SearchSpec overrides (e.g. time_limit)."""
    from optuna import load_study

    from search.candidates import Candidate
    from search.engine import run_search
    from search.executors.local import LocalExecutor
    from search.study import make_storage

    opts = dict(ENGINE_ARMS[arm])
    sampler, staged = opts.pop("sampler"), opts["staged"]
    spec = bench.spec(seed, sampler=sampler, trials=100_000 if staged else full_evals,
                      study_name=f"bench-{arm}-{seed}-{time.time_ns()}", **spec)
    result, counts = _counted(bench, lambda: run_search(spec, LocalExecutor(evaluate_fn=bench.evaluate),
                                                        max_full_evaluations=full_evals, save=False, **opts))
    study = load_study(study_name=result.study, storage=make_storage(spec.storage))
    candidates = [c for c in (Candidate.from_trial(t, result.metric) for t in study.get_trials()) if c is not None]
    evaluated = [bench.point(c.recipe, c.quality) for c in sorted(candidates, key=lambda c: c.trial)
                 if c.stage == "full"]
    return {"arm": arm, "seed": seed, "stopped_by": result.stopped_by, "full": result.full_evaluations, "proxy": result.proxy_evaluations,
            "rejected": result.rejected, **counts, "evaluated": evaluated}


def run_evopress_arm(bench: Bench, seed: int, full_evals: int, targets: int, lam: int) -> dict[str, Any]:
    from bench.evopress import Evaluated, evopress, order_levels

    levels = order_levels(bench.space.choices, bench.relative_cost)
    trial = itertools.count()

    def evaluate(params: dict[str, Any]) -> Evaluated:
        point = bench.full(bench.space.recipe(params), f"evopress-{seed}", next(trial))
        return Evaluated(params, bench.loss(point["quality"]), point)

    def feasible(params: dict[str, Any]) -> bool:
        return bench.cheap(bench.space.recipe(params)).feasible

    done, counts = _counted(bench, lambda: evopress(levels, bench.base, feasible, evaluate, full_evals,
                                                    targets=targets, lam=lam, seed=seed))
    return {"arm": "evopress", "seed": seed, "full": len(done), "proxy": 0, "rejected": 0, **counts,
            "evaluated": [e.record for e in done], "levels": {k: len(v) for k, v in levels.order.items()},
            "free": list(levels.free), "targets": targets, "lambda": lam}


def uniform_params(space: Any) -> list[dict[str, Any]]:
    """Every uniform recipe of the runtime's formats: each per-group quantization setting (bits or GGUF
    format, group size, method) the same for every group and the embedding; everything else (sparsity,
    rank, width, depth) at its first, uncompressed option. Distinct recipes only."""
    labels = {g.label for g in space.groups} | {"embedding"}
    by_suffix: dict[str, list[str]] = {}
    for name in space.choices:
        label, _, suffix = name.rpartition(".")
        if label in labels and suffix in QUANT_SUFFIXES:
            by_suffix.setdefault(suffix, []).append(name)
    base = {name: options[0] for name, options in space.choices.items()}
    suffixes = sorted(by_suffix)
    out, seen = [], set()
    for values in itertools.product(*(space.choices[by_suffix[s][0]] for s in suffixes)):
        params = dict(base)
        for suffix, value in zip(suffixes, values, strict=True):
            for name in by_suffix[suffix]:
                params[name] = value if value in space.choices[name] else space.choices[name][0]
        recipe = space.recipe(params).to_json()
        if recipe not in seen:
            seen.add(recipe)
            out.append(params)
    return out


def run_uniform_arm(bench: Bench) -> dict[str, Any]:
    """Each feasible uniform recipe, one full evaluation each, least compressed first."""
    candidates = sorted(uniform_params(bench.space), key=lambda p: -bench.relative_cost(p))
    feasible = [p for p in candidates if bench.cheap(bench.space.recipe(p)).feasible]

    def run() -> list[dict[str, Any]]:
        return [bench.full(bench.space.recipe(p), "uniform", i) for i, p in enumerate(feasible)]

    evaluated, counts = _counted(bench, run)
    return {"arm": "uniform", "seed": 0, "full": len(evaluated), "proxy": 0,
            "rejected": len(candidates) - len(feasible), **counts, "evaluated": evaluated}
