"""Engine mechanics with a stand-in quality function (tests/search/analytic.py): fast and exact."""

import optuna
import pytest
from optuna.trial import TrialState

from search.candidates import objective_point
from search.engine import run_search
from search.errors import InfeasibleError
from search.executors.local import LocalExecutor
from search.pareto import dominates
from search.results import load_front
from search.study import make_storage
from tests.search.analytic import analytic_evaluate, exploding_after


def _executor(fn=analytic_evaluate):
    return LocalExecutor(evaluate_fn=fn)


def _complete(result):
    from search.study import make_storage

    study = optuna.load_study(study_name=result.study, storage=make_storage(result.storage))
    return study, study.get_trials(states=(TrialState.COMPLETE,))


def test_latency_budget_front_is_feasible_and_non_dominated(tiny_spec):
    spec = tiny_spec(trials=30)
    result = run_search(spec, _executor())
    assert len(result.front) >= 3
    limit = spec.budget.latency_ms
    for c in result.front:
        assert c.latency_ms <= limit and c.feasible and c.stage == "full"
    points = [objective_point(c, spec.objectives, result.metric) for c in result.front]
    assert not any(dominates(p, q) for p in points for q in points)
    # the uncompressed seed is over budget: rejected from the recipe alone, its violation told to Optuna
    study, trials = _complete(result)
    assert len(trials) == 30
    seed = next(t for t in trials if t.user_attrs.get("seed") == "uncompressed")
    assert seed.user_attrs["candidate"]["stage"] == "rejected" and seed.constraints["max_latency"] > 0
    assert all(t.constraints for t in trials)
    assert result.rejected > 0 and result.proxy_evaluations > 0
    saved = load_front(result.study)
    assert [c["recipe"] for c in saved["front"]] == [c.recipe.model_dump(mode="json") for c in result.front]


def test_front_is_never_worse_than_the_uniform_seeds(tiny_spec):
    result = run_search(tiny_spec(trials=24), _executor())
    study, trials = _complete(result)
    fronts = [objective_point(c, result.spec.objectives, result.metric) for c in result.front]
    for t in trials:
        record = t.user_attrs["candidate"]
        if t.user_attrs.get("seed") and record["stage"] == "full" and record["feasible"]:
            point = (record["quality"]["kl"], record["latency_ms"], record["memory_bytes"])
            assert any(f == point or dominates(f, point) for f in fronts)


def test_interrupted_search_resumes_to_exactly_n(tiny_spec):
    spec = tiny_spec(trials=16, storage=None)  # the default SQLite file: what survives the interruption
    with pytest.raises(KeyboardInterrupt):
        run_search(spec, _executor(exploding_after(12)))  # 9 of them measure sensitivity
    study_name = optuna.get_all_study_names(storage=spec.storage or _default_storage())[0]
    study = optuna.load_study(study_name=study_name, storage=_default_storage())
    before = {t.number: t.values for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert 0 < len(before) < 16
    assert len(study.get_trials(states=(TrialState.RUNNING,))) == 1  # the one cut short
    result = run_search(spec, _executor(), resume=True)
    assert result.study == study_name and result.trials == 16
    study, trials = _complete(result)
    assert len(trials) == 16
    after = {t.number: t.values for t in trials}
    assert all(after[n] == v for n, v in before.items())  # finished trials kept as they were
    assert not study.get_trials(states=(TrialState.RUNNING,))
    # a second resume has nothing left to do
    assert run_search(spec, _executor(), resume=True).trials == 16


def _default_storage():
    from search.results import default_storage

    return default_storage()


def test_a_new_run_of_the_same_search_gets_a_new_study(tiny_spec):
    first = run_search(tiny_spec(trials=5, storage=None), _executor())
    second = run_search(tiny_spec(trials=5, storage=None), _executor())
    assert second.study == first.study + "-2"
    with pytest.raises(Exception, match="cannot resume"):
        run_search(tiny_spec(trials=5, study_name="nope"), _executor(), resume=True)


def test_time_limit_stops_the_search(tiny_spec):
    result = run_search(tiny_spec(trials=10_000, time_limit="3s"), _executor(), use_sensitivity=False)
    assert result.stopped_by == "time" and 0 < result.trials < 10_000


def test_a_resumed_search_keeps_its_clock(tiny_spec):
    spec = tiny_spec(trials=10_000, time_limit="2s", storage=None)
    first = run_search(spec, _executor(), use_sensitivity=False)
    assert first.stopped_by == "time" and first.seconds >= 2
    # the 2 s are spent: a resumed run starts no new trial, and its clock reads the time of both runs
    again = run_search(spec, _executor(), resume=True, use_sensitivity=False)
    assert again.stopped_by == "time" and again.trials == first.trials
    assert again.seconds >= first.seconds


def test_should_stop_ends_the_search_and_keeps_its_front(tiny_spec):
    seen = []
    result = run_search(tiny_spec(trials=1_000), _executor(), progress=seen.append, use_sensitivity=False,
                        should_stop=lambda: len(seen) >= 8)
    assert result.stopped_by == "stopped" and 8 <= result.trials < 20
    assert [c["trial"] for c in load_front(result.study)["front"]] == [c.trial for c in result.front]


def test_unreachable_budget_names_the_budget_and_the_closest_candidate(tiny_spec):
    with pytest.raises(InfeasibleError, match=r"max_latency 1us .*closest candidate"):
        run_search(tiny_spec(budget={"max_latency": "1us"}), _executor())


@pytest.mark.parametrize("sampler", ["tpe", pytest.param("gp", marks=pytest.mark.slow), "random"])
def test_other_samplers(tiny_spec, sampler):
    result = run_search(tiny_spec(trials=14, sampler=sampler, space={"granularity": "model"}), _executor())
    assert result.trials == 14 and result.front
    assert all(c.latency_ms <= result.spec.budget.latency_ms for c in result.front)


def test_without_staging_every_trial_is_fully_evaluated(tiny_spec):
    result = run_search(tiny_spec(trials=12), _executor(), staged=False, seed_trials=False)
    assert result.full_evaluations == 12 and result.rejected == 0 and result.proxy_evaluations == 0
    assert all(c.latency_ms <= result.spec.budget.latency_ms for c in result.front)


def test_full_evaluation_cap(tiny_spec):
    result = run_search(tiny_spec(trials=1000), _executor(), max_full_evaluations=6)
    assert result.full_evaluations == 6 and result.stopped_by == "full_evaluations"


def test_failed_evaluations_do_not_count(tiny_spec):
    calls = {"n": 0}

    def flaky(task):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise ValueError("flaky worker")
        return analytic_evaluate(task)

    with pytest.warns(UserWarning, match="sensitivity failed"):
        # past the seeds (over budget at prefill, they are rejected without an evaluation)
        result = run_search(tiny_spec(trials=45), LocalExecutor(evaluate_fn=flaky))
    study, trials = _complete(result)
    assert len(trials) == 45
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert failed and "flaky worker" in failed[0].user_attrs["error"]


def test_process_pool_keeps_several_trials_in_flight(tiny_spec):
    executor = LocalExecutor(workers=2, threads=1, evaluate_fn=analytic_evaluate)
    try:
        result = run_search(tiny_spec(trials=16, storage=None), executor)
    finally:
        executor.shutdown()
    assert result.trials == 16 and result.front
    assert all(c.latency_ms <= result.spec.budget.latency_ms for c in result.front)


@pytest.mark.integration
def test_postgresql_storage(tiny_spec, postgres_url):
    import uuid

    url = postgres_url  # a private PostgreSQL (tests/conftest.py); fails, never skips, if it cannot start
    name = f"devicefit-test-{uuid.uuid4().hex[:10]}"
    spec = tiny_spec(trials=10, storage=url, study_name=name)
    try:
        result = run_search(spec, _executor())
        assert result.storage == url and result.trials == 10 and result.front
        assert len(optuna.load_study(study_name=name, storage=make_storage(url)).trials) >= 10
        assert run_search(tiny_spec(trials=14, storage=url, study_name=name), _executor(), resume=True).trials == 14
    finally:
        optuna.delete_study(study_name=name, storage=make_storage(url))


def test_promoter_skips_only_what_the_proxy_error_cannot_save():
    from search.staging import Promoter

    promoter = Promoter(("quality", "latency", "memory"))
    front = [(0.01, 10.0, 100.0)]
    assert promoter.promote(0.5, 20.0, 200.0, front)  # no proxy/full pairs yet: promote everything
    for proxy, full in ((0.1, 0.11), (0.2, 0.21), (0.02, 0.019)):
        promoter.observe(proxy, full)
    assert not promoter.promote(0.5, 20.0, 200.0, front)  # far worse, slower and bigger
    assert promoter.promote(0.0105, 20.0, 200.0, front)  # within the proxy's error of the front member
    assert promoter.promote(0.5, 5.0, 200.0, front)  # faster: it could join the front


def test_trials_after_the_seeds_are_guided_proposals_unless_switched_off(tiny_spec):
    def guided(result):
        _, trials = _complete(result)
        return [t for t in trials if t.user_attrs.get("proposal") == "guided"]

    result = run_search(tiny_spec(trials=40), _executor(), use_sensitivity=False)
    proposals = guided(result)
    assert proposals and all(not t.user_attrs.get("seed") for t in proposals)
    _, trials = _complete(result)
    seeds = [t.number for t in trials if t.user_attrs.get("seed")]
    assert max(seeds) < min(t.number for t in trials if not t.user_attrs.get("seed"))  # the seeds run first
    recipes = [t.user_attrs["candidate"]["recipe"] for t in trials]
    assert all(recipes.count(t.user_attrs["candidate"]["recipe"]) == 1 for t in proposals)  # never a repeat
    assert not guided(run_search(tiny_spec(trials=40), _executor(), use_sensitivity=False, guided=False))
