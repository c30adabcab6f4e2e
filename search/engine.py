"""run_search: the multi-objective search over recipes, on Optuna's ask/tell.

For each trial: the sampler proposes parameters -> a recipe (space/suggest.py)
-> stage 1, memory and predicted latency from the recipe alone; a candidate
over budget is told to Optuna at once with its constraint values, no model
built -> stage 2, quality on a short slice of the evaluation data, run only when
a front member is already as fast and as small (else quality cannot keep the
candidate off the front) -> stage 3, full quality, only if the candidate could
still join the front (staging.py).
Evaluations go to an Executor, which may keep several in flight.
The first trials are the seeds (seeds.py); after them each trial is a guided proposal
(proposer.py: the candidate whose predicted quality, from an additive model fitted to the
full evaluations so far, adds the most hypervolume), or the sampler's when none is predicted to gain.

Every finished trial carries its recipe, stage and metrics as user attributes,
so the front can be rebuilt from the storage alone (resume, `show`, the service).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from search.candidates import CANDIDATE_ATTR, Candidate, front_of, pessimistic_quality
from search.errors import InfeasibleError
from search.evaluation import evaluate_task as evaluate_candidate
from search.executor import EvalResult, EvalTask, Executor
from search.export_candidate import export_candidate
from search.hw_profiles.runtimes import runtime_caps
from search.progress import Progress
from search.recipe import CompressionConfig
from search.space.suggest import RecipeSpace
from search.spec import SearchSpec
from search.staging import CheapEvaluator, CheapMetrics, Promoter, budget_names, violations
from search.study import fail_stale_trials, open_study, storage_url

MAX_CONSECUTIVE_FAILURES = 5
ELAPSED_ATTR = "search_seconds"  # study attribute: time spent on the search by every run so far
ELAPSED_WRITE_S = 5.0  # how often it is written (each write is a storage commit)
STOP_POLL_S = 1.0  # how often should_stop is asked while evaluations run


__all__ = ["preflight", "check_budget", "run_search", "evaluate_candidate", "export_candidate", "SearchResult", "Progress"]


@dataclass
class SearchResult:
    study: str
    storage: str
    spec: SearchSpec
    metric: tuple[str, str]  # primary quality metric and its direction ("max" / "min")
    front: list[Candidate]
    trials: int  # finished (complete) trials in the study
    feasible: int
    full_evaluations: int
    proxy_evaluations: int
    rejected: int  # stopped at stage 1
    seconds: float
    results_path: str | None = None
    closest: Candidate | None = None  # best infeasible candidate, when nothing fits
    stopped_by: str = "trials"  # trials | time | full_evaluations | stopped (should_stop said so)

    def to_json(self) -> dict[str, Any]:
        return {"front": [c.to_json() for c in self.front], "study": self.study,
                "results_path": self.results_path, "storage": self.storage, "metric": list(self.metric),
                "trials": self.trials, "feasible": self.feasible, "full_evaluations": self.full_evaluations,
                "proxy_evaluations": self.proxy_evaluations, "rejected": self.rejected,
                "seconds": round(self.seconds, 2), "stopped_by": self.stopped_by}


@dataclass
class _Pending:
    trial: Any
    recipe: CompressionConfig
    cheap: CheapMetrics
    stage: str
    proxy_loss: float | None = None
    proxy_quality: dict[str, float] = field(default_factory=dict)
    before_recovery: dict[str, float] | None = None  # full-stage quality of a candidate sent to recovery
    recovery: dict[str, Any] = field(default_factory=dict)  # what its recovery run did

    def __post_init__(self) -> None:
        self.predicted_latency_ms = self.cheap.latency_ms


def _recipe_key(recipe: CompressionConfig) -> str:
    """A short stable key of what a recipe means (the proposer keeps one per candidate it has costed)."""
    import hashlib

    return hashlib.sha1(recipe.to_json().encode()).hexdigest()


def _loss(quality: dict[str, float], metric: tuple[str, str]) -> float:
    """Quality as a loss >= 0: 1 - cosine for similarity metrics (<= 1, maximised), else the metric itself."""
    value = quality[metric[0]]
    return 1.0 - value if metric[1] == "max" else value


class _Search:
    def __init__(self, spec: SearchSpec, executor: Executor, progress: Callable[[Progress], None] | None,
                 *, resume: bool, seed_trials: bool, staged: bool, max_full_evaluations: int | None,
                 use_sensitivity: bool, should_stop: Callable[[], bool] | None = None, guided: bool = True):
        from search.evaluators.quality import primary_metric
        from search.models import load_graph

        self.spec, self.executor, self.progress = spec, executor, progress
        self.staged, self.max_full = staged, max_full_evaluations
        self.graph = load_graph(spec.model)
        self.cheap = CheapEvaluator(spec, self.graph)
        self.space = RecipeSpace(self.graph, spec.space, runtime_caps(self.cheap.profile))
        self.metric = primary_metric(self.graph)
        check_reachable(spec, self.space, self.cheap)
        self.study = open_study(spec, self.metric[1], resume=resume, evaluations=max_full_evaluations)
        self.storage = storage_url(spec)
        fail_stale_trials(self.study)
        self.promoter = Promoter(spec.objectives)
        self.pending: dict[Future, _Pending] = {}
        self.should_stop = should_stop
        # a resumed search keeps its clock: time_limit counts the time every run has spent on it
        self.started = time.monotonic() - float(self.study.user_attrs.get(ELAPSED_ATTR, 0.0))
        self._elapsed_written = time.monotonic()
        self.consecutive_failures = 0
        self.params_of: dict[int, dict[str, Any]] = {}  # trial number -> its parameters (the proposer's input)
        self.taken: set[str] = set()  # recipes evaluated or in flight (_recipe_key)
        self._load_history()
        seeding = seed_trials and not self.history
        sensitivity = None
        if use_sensitivity and (seeding or guided) and len(self.space.groups) > 1:
            from search.space.sensitivity import layer_sensitivity

            try:
                sensitivity = layer_sensitivity(spec, self.space, executor, self.metric)
            except Exception as exc:  # noqa: BLE001 - guidance only: the search goes on without it
                warnings.warn(f"per-layer sensitivity failed ({type(exc).__name__}: {exc}); "
                              "searching without it", stacklevel=2)
        if seeding:
            from search.seeds import seed_params

            for label, params in seed_params(self.space, self._cost):
                self.study.enqueue_trial(params, user_attrs={"seed": label}, skip_if_exists=True)
        self.proposer = self._proposer(sensitivity) if guided else None

    def _cost(self, params: dict[str, Any]) -> tuple[float, float]:
        cheap = self.cheap(self.space.recipe(params))
        return cheap.latency_ms, cheap.memory_bytes

    def _proposer(self, sensitivity: dict[str, float] | None) -> Any:
        """Guided proposals after the seeds (search/proposer.py); objectives are scaled by the budget, or by
        the uncompressed model's cost where there is none."""
        from search.proposer import Proposer

        def cheap(params: dict[str, Any]) -> tuple[float, float, bool, str]:
            recipe = self.space.recipe(params)
            c = self.cheap(recipe)
            return c.latency_ms, c.memory_bytes, c.feasible, _recipe_key(recipe)

        top = self.cheap(self.space.recipe(self.space.params()))
        b, objectives = self.spec.budget, self.spec.objectives
        reference = (1.0 if self.metric[1] == "max" else None,
                     (b.latency_ms or top.latency_ms) if "latency" in objectives else float("inf"),
                     (b.memory_bytes or top.memory_bytes) if "memory" in objectives else float("inf"))
        return Proposer(self.space.choices, cheap, reference, self.metric[1], sensitivity, self.spec.seed)

    def _observed(self) -> list[tuple[dict[str, Any], float, float, float, bool]]:
        return [(self.params_of[c.trial], _loss(c.quality, self.metric), c.latency_ms, c.memory_bytes, c.feasible)
                for c in self.history if c.stage == "full" and c.trial in self.params_of]

    # ---- bookkeeping from the storage --------------------------------------
    def _load_history(self) -> None:
        from optuna.trial import TrialState

        done = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        self.history = [c for c in (Candidate.from_trial(t, self.metric) for t in done) if c is not None]
        self.params_of.update((t.number, t.params) for t in done)
        self.taken.update(_recipe_key(c.recipe) for c in self.history)
        for c in self.history:
            if c.stage == "full" and c.proxy_quality:
                self.promoter.observe(_loss(c.proxy_quality, self.metric), _loss(c.quality, self.metric))

    @property
    def finished(self) -> int:
        return len(self.history)

    @property
    def full_evaluations(self) -> int:
        return sum(c.stage == "full" for c in self.history)

    def front(self) -> list[Candidate]:
        return front_of(self.history, self.spec.objectives, self.metric)

    # ---- the loop ------------------------------------------------------------
    def stop_reason(self) -> str | None:
        if self.should_stop is not None and self.should_stop():
            return "stopped"
        if self.finished + len(self.pending) >= self.spec.trials:
            return "trials"
        limit = self.spec.time_limit_s
        if limit is not None and time.monotonic() - self.started >= limit:
            return "time"
        if self.max_full is not None and self.full_evaluations + len(self.pending) >= self.max_full:
            return "full_evaluations"
        return None

    def run(self) -> str:
        while True:
            reason = self.stop_reason()
            while reason is None and len(self.pending) < self.executor.max_in_flight:
                self._start_trial()
                reason = self.stop_reason()
            if not self.pending or reason == "stopped":
                self.record_elapsed(force=True)
                return reason or "trials"
            # with a timeout, so should_stop is heard while long evaluations run
            done, _ = wait(list(self.pending), timeout=STOP_POLL_S if self.should_stop else None,
                           return_when=FIRST_COMPLETED)
            for future in done:
                self._finish(future, self.pending.pop(future))
            self.record_elapsed()

    def record_elapsed(self, force: bool = False) -> None:
        """Store the search's elapsed time in the study (throttled), so a resumed run continues the clock."""
        now = time.monotonic()
        if force or now - self._elapsed_written >= ELAPSED_WRITE_S:
            self.study.set_user_attr(ELAPSED_ATTR, round(now - self.started, 3))
            self._elapsed_written = now

    def _start_trial(self) -> None:
        if self.proposer is not None and not self._queued():
            try:
                params = self.proposer.propose(self._observed(), self.taken)
            except Exception as exc:  # noqa: BLE001 - guidance only: the sampler carries on alone
                warnings.warn(f"guided proposals failed ({type(exc).__name__}: {exc}); the sampler proposes "
                              "from here on", stacklevel=2)
                self.proposer, params = None, None
            if params is not None:  # else the sampler proposes
                self.study.enqueue_trial(params, user_attrs={"proposal": "guided"})
        trial = self.study.ask(self.space.distributions())
        recipe = self.space.recipe(trial.params)
        self.taken.add(_recipe_key(recipe))
        cheap = self.cheap(recipe)
        if self.staged and not cheap.feasible:
            # stage 1 rejection: no model is built; quality is a pessimistic stand-in the
            # sampler can live with, while the constraints carry the real information
            quality = {self.metric[0]: pessimistic_quality(self.history, self.metric)}
            self._tell(_Pending(trial, recipe, cheap, "rejected"), quality)
            return
        stage = "proxy" if self.staged and self._quality_decides(cheap) else "full"
        self._submit(_Pending(trial, recipe, cheap, stage))

    def _queued(self) -> bool:
        """Whether enqueued trials (seeds, a proposal) are still waiting to be asked."""
        from optuna.trial import TrialState

        return bool(self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))

    def _quality_decides(self, cheap: CheapMetrics) -> bool:
        """Whether the quality proxy can matter: only when a front member is already at least as fast
        and as small. Otherwise the candidate joins the front whatever its quality, so stage 2 is skipped."""
        return any(("latency" not in self.spec.objectives or c.latency_ms <= cheap.latency_ms)
                   and ("memory" not in self.spec.objectives or c.memory_bytes <= cheap.memory_bytes)
                   for c in self.front())

    def _submit(self, p: _Pending) -> None:
        task = EvalTask(study=self.study.study_name, trial=p.trial.number, stage=p.stage, spec=self.spec,
                        recipe=p.recipe)
        self.pending[self.executor.submit(task)] = p

    def _finish(self, future: Future, p: _Pending) -> None:
        try:
            result: EvalResult = future.result()
        except Exception as exc:
            self._failed(p, exc)
            return
        self.consecutive_failures = 0
        if p.stage == "proxy":
            p.proxy_quality = result.quality
            p.proxy_loss = _loss(result.quality, self.metric)
            front = [(_loss(c.quality, self.metric), c.latency_ms, c.memory_bytes) for c in self.front()]
            if self.promoter.promote(p.proxy_loss, p.cheap.latency_ms, p.cheap.memory_bytes, front):
                p.stage = "full"
                self._submit(p)
            else:
                self._tell(p, result.quality, result)
            return
        if p.stage == "recover":  # the last stage (spec.recover) finished: tell the recovered metrics
            p.stage, p.recovery = "full", dict(result.extra.get("recovery", {}))
        elif p.proxy_loss is not None:
            self.promoter.observe(p.proxy_loss, _loss(result.quality, self.metric))
        if result.latency_ms is not None and self.spec.measure:
            # measured on this host: the measurement, not the prediction, decides feasibility
            p.cheap = CheapMetrics(result.latency_ms, p.cheap.memory_bytes,
                                   violations(self.spec, result.latency_ms, p.cheap.memory_bytes))
        if self._send_to_recovery(p, result):
            return
        self._tell(p, result.quality, result)

    def _send_to_recovery(self, p: _Pending, result: EvalResult) -> bool:
        """Recovery (spec.recover) as the last stage, for candidates that could join the front after it."""
        if not self.spec.recover or p.before_recovery is not None:
            return False
        from search.recovery.in_search import worth_recovering

        if not worth_recovering(result.quality, p.cheap.latency_ms, p.cheap.memory_bytes, p.cheap.feasible,
                                self.front(), self.history, self.spec.objectives, self.metric):
            return False
        p.before_recovery, p.stage = result.quality, "recover"
        self._submit(p)
        return True

    def _failed(self, p: _Pending, exc: Exception) -> None:
        from optuna.trial import TrialState

        p.trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
        p.trial.set_user_attr(CANDIDATE_ATTR, {"recipe": p.recipe.model_dump(mode="json"), "stage": "failed"})
        self.study.tell(p.trial, state=TrialState.FAIL)
        self.consecutive_failures += 1
        if self.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
            raise RuntimeError(f"{self.consecutive_failures} evaluations failed in a row; last: "
                               f"{type(exc).__name__}: {exc}") from exc

    def _tell(self, p: _Pending, quality: dict[str, float], result: EvalResult | None = None) -> None:
        """Record the candidate on the trial (one attribute: each storage write is a commit) and tell Optuna."""
        cheap = p.cheap
        candidate = Candidate(
            trial=p.trial.number, recipe=p.recipe, stage=p.stage, quality=quality, latency_ms=cheap.latency_ms,
            memory_bytes=cheap.memory_bytes, feasible=cheap.feasible, constraints=cheap.constraints,
            proxy_quality=p.proxy_quality, predicted_latency_ms=p.predicted_latency_ms,
            seed=p.trial.user_attrs.get("seed"),
            data=self.spec.data_policy.record() if p.stage != "rejected" else None,
            # both metrics are kept after recovery; "quality" (the front's) is the recovered one
            quality_before_recovery=p.before_recovery, recovery=p.recovery if p.before_recovery else None,
            **({} if result is None else dict(built_memory_bytes=result.memory_bytes,
                                              eval_seconds=round(result.seconds, 3), worker=result.worker)))
        p.trial.set_user_attr(CANDIDATE_ATTR, candidate.record())
        for name, value in zip(budget_names(self.spec), cheap.constraints, strict=True):
            p.trial.set_constraint(name, value)
        values = {"quality": quality[self.metric[0]], "latency": cheap.latency_ms, "memory": cheap.memory_bytes}
        self.study.tell(p.trial, [float(values[o]) for o in self.spec.objectives])
        self.history.append(candidate)
        self.params_of[p.trial.number] = p.trial.params
        if p.stage == "full" and self.on_front_change is not None:
            self.on_front_change(self)
        if self.progress is not None:
            front = self.front()
            self.progress(Progress(
                completed=self.finished, total=self.spec.trials, running=len(self.pending),
                infeasible=sum(not c.feasible for c in self.history),
                feasible=sum(c.feasible and c.stage == "full" for c in self.history), front_size=len(front),
                elapsed_s=time.monotonic() - self.started, full_evaluations=self.full_evaluations))

    on_front_change: Callable[[_Search], None] | None = None

    def result(self, stopped_by: str) -> SearchResult:
        front = self.front()
        closest = None
        if not front:
            infeasible = [c for c in self.history if not c.feasible]
            closest = min(infeasible, key=lambda c: sum(max(0.0, v) for v in c.constraints), default=None)
        return SearchResult(
            study=self.study.study_name, storage=self.storage, spec=self.spec, metric=self.metric, front=front,
            trials=self.finished, feasible=sum(c.feasible and c.stage == "full" for c in self.history),
            full_evaluations=self.full_evaluations, proxy_evaluations=sum(bool(c.proxy_quality) for c in self.history),
            rejected=sum(c.stage == "rejected" for c in self.history), seconds=time.monotonic() - self.started,
            closest=closest, stopped_by=stopped_by)


def preflight(spec: SearchSpec) -> None:
    """Every refusal that needs no evaluation, at once: unknown model or device, unreachable budget, bad storage."""
    from search.models import load_graph
    from search.study import make_storage

    check_budget(spec, load_graph(spec.model))
    make_storage(storage_url(spec))


def check_budget(spec: SearchSpec, graph: Any) -> None:
    """Refuse at once a budget that no recipe the device's runtime runs can meet (InfeasibleError)."""
    cheap = CheapEvaluator(spec, graph)
    check_reachable(spec, RecipeSpace(graph, spec.space, runtime_caps(cheap.profile)), cheap)


def check_reachable(spec: SearchSpec, space: RecipeSpace, cheap: CheapEvaluator) -> None:
    """Refuse at once a budget that even the most compressed recipe of the space cannot meet."""
    s = spec.space
    smallest = space.recipe(space.params(
        bits=min(s.bits), group_size=max(s.group_sizes), sparsity=max(space.choices.get(
            f"{space.groups[0].label}.sparsity", ["0"]), key=lambda o: float(o.partition("@")[0])),
        rank=min(s.ranks), mlp=min(s.width), heads=min(s.width), depth=min(s.depth)))
    best = cheap(smallest)
    if best.feasible:
        return
    from search.units import format_bytes, format_ms

    over = []
    if spec.budget.latency_ms is not None and best.latency_ms > spec.budget.latency_ms:
        over.append(f"max_latency {spec.budget.max_latency} (it takes {format_ms(best.latency_ms)} "
                    f"for {spec.workload} on {spec.device})")
    if spec.budget.memory_bytes is not None and best.memory_bytes > spec.budget.memory_bytes:
        over.append(f"max_memory {spec.budget.max_memory} (it needs {format_bytes(best.memory_bytes)})")
    raise InfeasibleError(f"no candidate can meet {' and '.join(over)}: that is the closest candidate, "
                          f"the most compressed in the search space ({smallest.summary()}); relax the budget")


def run_search(spec: SearchSpec, executor: Executor | None = None,
               progress: Callable[[Progress], None] | None = None, *, resume: bool = False,
               seed_trials: bool = True, staged: bool = True, max_full_evaluations: int | None = None,
               use_sensitivity: bool = True, save: bool = True,
               should_stop: Callable[[], bool] | None = None, guided: bool = True) -> SearchResult:
    """Search spec's space for the Pareto front of feasible recipes; saves front.json unless save=False.

    resume: continue the latest study of this spec (or spec.study_name), keeping its finished trials,
    until spec.trials trials are complete. seed_trials / staged / use_sensitivity switch off the
    corresponding features (the benchmark's plain baselines); guided=False leaves every trial after the
    seeds to the sampler (no search/proposer.py proposals); max_full_evaluations caps stage-3 runs.
    should_stop: asked before each trial starts and about every second while evaluations run; when it
    returns True the search stops at once (evaluations in flight are abandoned; a resumed run re-runs
    them) and the front so far is saved, with stopped_by "stopped".
    time_limit counts the time of earlier runs of a resumed study too.
    """
    own_executor = executor is None
    if executor is None:
        from search.executors.local import LocalExecutor

        executor = LocalExecutor()
    try:
        search = _Search(spec, executor, progress, resume=resume, seed_trials=seed_trials, staged=staged,
                         max_full_evaluations=max_full_evaluations, use_sensitivity=use_sensitivity,
                         should_stop=should_stop, guided=guided)
        if save:
            search.on_front_change = lambda s: save_front(s.result("running"))
        try:
            stopped_by = search.run()
        finally:
            for future in search.pending:
                future.cancel()
        result = search.result(stopped_by)
        if save:
            result.results_path = str(save_front(result))
        return result
    finally:
        if own_executor:
            executor.shutdown()


def save_front(result: SearchResult) -> Any:
    """Write the study's front.json (atomically); returns its path."""
    from search.results import write_front

    payload = result.to_json()
    payload.pop("results_path", None)
    payload.update(spec=result.spec.model_dump(mode="json"), objectives=list(result.spec.objectives),
                   updated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return write_front(result.study, payload)
