"""Whole searches on real `search-cli worker` processes and a real (private) Redis.

The must-haves of distributed evaluation: N finished trials with 2 workers;
still N, none duplicated, when a worker is SIGKILLed mid-trial; and a search
that survives a Redis restart (which, without persistence, loses every queued
message and result). The worker processes are shared by the module's tests
(killed ones are replaced); each test's executor has its own ledger scope.
"""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from search.spec import Budget, SearchSpace, SearchSpec
from workers.executor import CeleryExecutor

pytestmark = pytest.mark.integration
TRIALS = 4
SEARCH_TIMEOUT_S = 240


def small_spec(model_ref: str, tmp_path, trials: int = TRIALS, calib_samples: int = 4, seq_len: int = 32
               ) -> SearchSpec:
    return SearchSpec(model=model_ref, device="rpi5", workload="prefill:32", budget=Budget(max_latency="10s"),
                      trials=trials, calib_samples=calib_samples, seq_len=seq_len, seed=1,
                      space=SearchSpace(axes=("bits", "sparsity"), granularity="model"),
                      storage=f"sqlite:///{tmp_path}/studies.db")


def run_in_background(spec: SearchSpec, executor: CeleryExecutor):
    from search.engine import run_search

    pool = ThreadPoolExecutor(1)
    future = pool.submit(run_search, spec, executor, None, use_sensitivity=False, save=False)
    pool.shutdown(wait=False)
    return future


def trial_states(spec: SearchSpec, study: str) -> tuple[list[int], list[str]]:
    import optuna

    trials = optuna.load_study(study_name=study, storage=spec.storage).get_trials(deepcopy=False)
    return [t.number for t in trials], [t.state.name for t in trials]


def stored_outcomes(url: str, scope: str) -> dict[str, dict]:
    """study:trial:stage -> outcome, of one executor's evaluations."""
    r = redis.Redis.from_url(url)
    prefix = f"devicefit:result:{scope}/"
    return {k.decode().removeprefix(prefix): json.loads(r.get(k)) for k in r.scan_iter(prefix + "*")}


def assert_exactly_n_finished(spec: SearchSpec, result) -> None:
    numbers, states = trial_states(spec, result.study)
    finished = [n for n, s in zip(numbers, states, strict=True) if s != "WAITING"]  # WAITING: an unused seed
    assert result.trials == spec.trials
    assert sorted(finished) == list(range(spec.trials)), "a trial was lost or duplicated"
    assert [s for s in states if s != "WAITING"] == ["COMPLETE"] * spec.trials


def test_two_workers_finish_exactly_n_trials(worker_pool, redis_server, tiny_llama_ref, tmp_path):
    w1, w2 = worker_pool.ensure(2)
    spec = small_spec(tiny_llama_ref, tmp_path)
    with CeleryExecutor(redis_server.url, poll_interval_s=0.2, discover_timeout_s=3) as ex:
        assert ex.max_in_flight == 3  # two worker processes answered, plus one queued
        result = run_in_background(spec, ex).result(timeout=SEARCH_TIMEOUT_S)
    assert_exactly_n_finished(spec, result)
    workers = {o["worker"] for o in stored_outcomes(redis_server.url, ex.id).values()}
    assert workers == {w1.name, w2.name}, "both workers should have evaluated candidates"


@pytest.mark.parametrize("victim", ["whole worker", "pool process"])
def test_sigkill_mid_trial_loses_and_duplicates_nothing(victim, worker_pool, redis_server, tiny_llama_ref,
                                                        tmp_path):
    workers = worker_pool.ensure(2)
    # a warm worker evaluates the tiny model on 4x32 tokens in ~0.1 s; 128x256 takes seconds, long enough
    # for the kill below (about 20 ms after the run is seen) to land mid-trial
    spec = small_spec(tiny_llama_ref, tmp_path, calib_samples=128, seq_len=256)
    r = redis.Redis.from_url(redis_server.url)
    with CeleryExecutor(redis_server.url, max_in_flight=2, poll_interval_s=0.2) as ex:
        search = run_in_background(spec, ex)
        key, token, deadline = None, None, time.monotonic() + SEARCH_TIMEOUT_S
        while token is None and time.monotonic() < deadline:  # a full evaluation running right now
            time.sleep(0.02)
            for claim in r.scan_iter(f"devicefit:claim:{ex.id}/*:full"):
                key, token = claim.decode().removeprefix(f"devicefit:claim:{ex.id}/"), r.get(claim)
                if token is not None:
                    break
        token = token.decode()  # "<worker name>:<pid>:<nonce>"
        victim_worker = next(w for w in workers if token.startswith(w.name + ":"))
        if victim == "whole worker":
            victim_worker.kill()  # parent and pool process: nobody requeues its message
        else:
            os.kill(int(token.split(":")[1]), signal.SIGKILL)  # the parent sees it and requeues
        assert r.get(f"devicefit:result:{ex.id}/{key}") is None, "the kill should land mid-trial"
        result = search.result(timeout=SEARCH_TIMEOUT_S)
    assert_exactly_n_finished(spec, result)
    redone = stored_outcomes(redis_server.url, ex.id)[key]
    assert redone["ok"] and redone["attempt"] >= 2, "the killed trial must have been evaluated again"
    if victim == "whole worker":
        survivor = next(w for w in workers if w is not victim_worker)
        assert redone["worker"] == survivor.name
        assert ex.stats["resubmitted_lost_run"] >= 1


def test_search_survives_redis_restart(worker_pool, redis_server, tiny_llama_ref, tmp_path):
    worker_pool.ensure(2)
    spec = small_spec(tiny_llama_ref, tmp_path, calib_samples=128, seq_len=256)  # seconds per trial
    with CeleryExecutor(redis_server.url, max_in_flight=2, poll_interval_s=0.2) as ex:
        search = run_in_background(spec, ex)
        deadline = time.monotonic() + SEARCH_TIMEOUT_S
        while ex.stats["completed"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not search.done(), "the restart should land mid-search"
        redis_server.restart(down_s=1.0)  # everything queued or stored in Redis is gone
        result = search.result(timeout=SEARCH_TIMEOUT_S)
        assert ex.stats["redis_data_lost"] >= 1
    assert_exactly_n_finished(spec, result)
    # the new, empty Redis holds outcomes: evaluation went on after the restart
    assert stored_outcomes(redis_server.url, ex.id)


@pytest.mark.slow
def test_whole_search_runs_as_a_task(search_runner, redis_server, tiny_llama_ref, tmp_path):
    """devicefit.run_search on a search-runner worker, its candidates on the general workers (the service's path)."""
    from workers.celery_app import make_app

    spec = small_spec(tiny_llama_ref, tmp_path, trials=3).model_copy(update={"study_name": "as-a-task"})
    app = make_app(redis_server.url)
    try:
        summary = app.send_task("devicefit.run_search", kwargs={"spec": spec.model_dump(mode="json")},
                                queue="devicefit.searches").get(timeout=SEARCH_TIMEOUT_S)
    finally:
        app.close()
    assert summary["study"] == "as-a-task" and summary["trials"] == 3 and summary["front"]
    numbers, states = trial_states(spec, "as-a-task")
    assert [s for s in states if s != "WAITING"] == ["COMPLETE"] * 3


def test_search_cli_with_broker(worker_pool, redis_server, tiny_llama_ref, tmp_path):
    """`search-cli search --broker URL`: the CLI's search, evaluated by the workers."""
    import subprocess
    import sys

    from tests.workers.conftest import ROOT

    workers = worker_pool.ensure(2)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(small_spec(tiny_llama_ref, tmp_path, trials=3).model_dump_json())
    done = subprocess.run([sys.executable, "-m", "search.cli.main", "search", "--spec", str(spec_file), "--broker",
                           redis_server.url, "--json"], cwd=ROOT, capture_output=True, text=True,
                          timeout=SEARCH_TIMEOUT_S, env=dict(os.environ, DEVICEFIT_RESULTS=str(tmp_path)))
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads(done.stdout)
    assert payload["trials"] == 3 and payload["front"]
    log = "".join(w.log.read_text() for w in workers)
    assert payload["study"] in log, "the workers should have evaluated this search's candidates"


