"""Whole searches as tasks (the service's path): they never starve evaluations, exactly one engine runs
each search, and a search whose runner died is resumed from its Optuna study.

Real `search-cli worker` processes on a private Redis; leases and heartbeats shortened (FAST_ENV).
"""

from __future__ import annotations

import time

import pytest
import redis

from tests.workers.test_distributed_search import small_spec, trial_states
from workers.search_lease import lease_key

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TIMEOUT_S = 300
RESUME_BOUND_S = 120  # the bound: a dead runner noticed and its search resumed within 2 minutes


@pytest.fixture
def app(redis_server):
    from workers.celery_app import make_app

    celery = make_app(redis_server.url)
    yield celery
    celery.close()


def send(app, spec, task_id: str):
    return app.send_task("devicefit.run_search", kwargs={"spec": spec.model_dump(mode="json")},
                         queue="devicefit.searches", task_id=task_id)


def wait_for_complete_trial(spec, study: str) -> None:
    import optuna

    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            trials = optuna.load_study(study_name=study, storage=spec.storage).get_trials(deepcopy=False)
            if any(t.state.name == "COMPLETE" for t in trials):
                return
        except KeyError:
            pass  # not created yet
        time.sleep(0.2)
    pytest.fail(f"no trial of {study} completed in {TIMEOUT_S} s")


def test_one_process_worker_runs_four_searches_at_once(worker_pool, redis_server, app, tiny_llama_ref, tmp_path):
    """The deadlock of issue 12: searches >= worker processes. Runners are threads, so all four finish."""
    worker_pool.stop_all()
    worker_pool.workers = []
    worker = worker_pool.extra("solo", queues="general,searches", concurrency=1, search_threads=4,
                               extra_env={"DEVICEFIT_RESULTS": str(tmp_path)})
    specs = [small_spec(tiny_llama_ref, tmp_path, trials=3).model_copy(update={"study_name": f"four-{i}",
                                                                               "seed": i}) for i in range(4)]
    started = time.monotonic()
    pending = [send(app, spec, f"four-{i}") for i, spec in enumerate(specs)]
    summaries = [p.get(timeout=TIMEOUT_S) for p in pending]
    print(f"4 searches on one evaluation process: {time.monotonic() - started:.1f} s")
    for spec, summary in zip(specs, summaries, strict=True):
        assert summary["trials"] == 3 and summary["study"] == spec.study_name
        assert [s for s in trial_states(spec, spec.study_name)[1] if s != "WAITING"] == ["COMPLETE"] * 3
    log = worker.log.read_text()
    assert log.count("ready.") == 2  # one evaluation process pool, one search-runner thread pool
    worker_pool.stop_extras()


def test_a_redelivered_runner_is_ignored_while_the_first_lives(search_runner, redis_server, app, tiny_llama_ref,
                                                               tmp_path):
    # 128 x 256 tokens: seconds per trial, so the first runner is alive when the copy arrives
    spec = small_spec(tiny_llama_ref, tmp_path, calib_samples=128, seq_len=256).model_copy(
        update={"study_name": "twice"})
    first = send(app, spec, "twice")
    r = redis.Redis.from_url(redis_server.url)
    deadline = time.monotonic() + TIMEOUT_S
    while r.get(lease_key("twice")) is None:  # the first runner holds the search
        assert time.monotonic() < deadline and not first.ready()
        time.sleep(0.05)
    send(app, spec, "twice")  # the same message again, as a redelivery would bring it
    dropped = "not running this copy of search twice"
    while dropped not in search_runner.log.read_text():
        assert time.monotonic() < deadline, "the copy was neither dropped nor run"
        time.sleep(0.1)
    line = next(x for x in search_runner.log.read_text().splitlines() if dropped in x)
    assert "is running on runner@" in line, line  # dropped because the first one lives, not because it finished
    summary = first.get(timeout=TIMEOUT_S)
    numbers, states = trial_states(spec, "twice")
    assert summary["trials"] == spec.trials
    # a second engine would have failed the first one's running trials on resume
    assert [s for s in states if s != "WAITING"] == ["COMPLETE"] * spec.trials


def test_a_killed_runner_is_noticed_and_its_search_resumed(worker_pool, redis_server, app, tiny_llama_ref,
                                                           tmp_path):
    worker_pool.ensure(2)
    env = {"DEVICEFIT_RESULTS": str(tmp_path), "DEVICEFIT_VISIBILITY_TIMEOUT": "3600"}  # only the watchdog helps
    runners = [worker_pool.extra(f"runner{i}", queues="searches", extra_env=env) for i in (1, 2)]
    spec = small_spec(tiny_llama_ref, tmp_path, calib_samples=64, seq_len=128).model_copy(
        update={"study_name": "orphan", "trials": 6})
    pending = send(app, spec, "orphan")
    wait_for_complete_trial(spec, "orphan")
    r = redis.Redis.from_url(redis_server.url)
    holder = r.get(lease_key("orphan")).decode()
    victim = next(w for w in runners if holder.startswith(w.name + ":"))
    survivor = next(w for w in runners if w is not victim)
    victim.kill()  # SIGKILL, the whole process: its message stays unacknowledged for the visibility timeout
    killed = time.monotonic()
    while True:
        now = r.get(lease_key("orphan"))
        if now is not None and now.decode().startswith(survivor.name + ":"):
            break
        assert time.monotonic() - killed < RESUME_BOUND_S, "the dead runner's search was not resumed in time"
        time.sleep(0.2)
    resumed_after = time.monotonic() - killed
    print(f"dead runner noticed and its search resumed after {resumed_after:.1f} s")
    summary = pending.get(timeout=TIMEOUT_S)
    numbers, states = trial_states(spec, "orphan")
    assert summary["trials"] == spec.trials
    assert states.count("COMPLETE") == spec.trials  # finished trials kept; the lost one failed and replaced
    assert len(set(numbers)) == len(numbers)
    assert "sending it again to resume" in survivor.log.read_text()
    worker_pool.stop_extras()


def test_searches_do_not_count_as_evaluation_slots(worker_pool, redis_server):
    """The executor sizes its in-flight window on evaluation processes only, not on runner threads."""
    from workers.executor import CeleryExecutor

    worker_pool.stop_all()
    worker_pool.workers = []
    worker_pool.ensure(1)  # exactly one evaluation process
    worker_pool.extra("lonely-runner", queues="searches", search_threads=8)
    with CeleryExecutor(redis_server.url, discover_timeout_s=3) as ex:
        assert ex.max_in_flight == 2  # one evaluation process, plus one queued
    worker_pool.stop_extras()
