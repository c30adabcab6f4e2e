"""CeleryExecutor against a real Redis, with the worker's side played by the test (no Celery worker)."""

from __future__ import annotations

import json
import time

import pytest

from search.errors import RecipeError, SpecError
from search.executor import EvalResult, EvalTask, Executor
from search.recipe import CompressionConfig
from search.spec import SearchSpec
from workers.executor import CeleryExecutor, EvaluationFailed, executor_from_url
from workers.ledger import Ledger, key_of, redis_client
from workers.queues import GENERAL, device_queue

pytestmark = pytest.mark.integration


def make_task(trial: int = 0, **spec) -> EvalTask:
    return EvalTask(study="st", trial=trial, spec=SearchSpec(**spec), recipe=CompressionConfig.uniform(bits=4))


@pytest.fixture
def ex(redis_db):
    executor = CeleryExecutor(redis_db, max_in_flight=3, poll_interval_s=0.1)
    yield executor
    executor.shutdown()


@pytest.fixture
def ledger(redis_db):
    lg = Ledger(redis_client(redis_db))
    yield lg
    lg.r.close()


def queued(ledger: Ledger, queue: str = GENERAL) -> list[dict]:
    """The EvalTasks waiting in a queue (kombu keeps a Redis list per queue)."""
    bodies = []
    for raw in ledger.r.lrange(queue, 0, -1):
        message = json.loads(raw)
        import base64

        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        bodies.append(kwargs["task"])
    return bodies


def wait_for(predicate, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_is_an_executor_and_routes_by_measurement(ex, ledger):
    assert isinstance(ex, Executor) and ex.max_in_flight == 3
    ex.submit(make_task(0))
    ex.submit(make_task(1, measure=True, device="rpi5"))
    assert [t["trial"] for t in queued(ledger)] == [0]
    assert [t["trial"] for t in queued(ledger, device_queue("rpi5"))] == [1]


def test_outcome_resolves_future_once_and_same_key_is_one_evaluation(ex, ledger):
    first = ex.submit(make_task(0))
    assert ex.submit(make_task(0)) is first
    assert len(queued(ledger)) == 1
    result = EvalResult(key="st:0:full", quality={"kl": 0.25}, worker="w1")
    ledger.finish(f"{ex.id}/st:0:full", "tok", {"ok": True, "result": result.model_dump(mode="json")}, ex._notices)
    assert first.result(timeout=5) == result
    ledger.finish(f"{ex.id}/st:0:full", "tok2", {"ok": True, "result": result.model_dump(mode="json")}, ex._notices)
    time.sleep(0.3)
    assert ex.stats["completed"] == 1


def test_failures_keep_their_meaning(ex, ledger):
    user, bug = ex.submit(make_task(0)), ex.submit(make_task(1))
    ledger.finish(f"{ex.id}/st:0:full", "t", {"ok": False, "error": "bits 9 is bad", "error_type": "RecipeError",
                                     "user_error": True, "worker": "w"}, ex._notices)
    ledger.finish(f"{ex.id}/st:1:full", "t", {"ok": False, "error": "boom", "error_type": "ZeroDivisionError",
                                     "user_error": False, "worker": "w"}, ex._notices)
    with pytest.raises(RecipeError, match="bits 9"):
        user.result(timeout=5)
    with pytest.raises(EvaluationFailed, match="ZeroDivisionError: boom"):
        bug.result(timeout=5)


def test_run_that_stopped_heartbeating_is_resubmitted_once(ex, ledger):
    future = ex.submit(make_task(0))
    ledger.r.lpop(GENERAL)  # a worker took the message...
    ledger.claim(f"{ex.id}/st:0:full", "run-a")  # ...started it, and died: no claim, no result
    ledger.r.delete(key_of("claim", f"{ex.id}/st:0:full"))
    wait_for(lambda: len(queued(ledger)) == 1)
    time.sleep(0.5)
    assert len(queued(ledger)) == 1 and ex.stats["resubmitted_lost_run"] == 1
    assert not future.done()


def test_redis_data_loss_resubmits_unfinished(ex, ledger):
    ex.submit(make_task(0))
    ex.submit(make_task(1))
    ledger.r.flushall()  # what a restart of a Redis without persistence does
    wait_for(lambda: len(queued(ledger)) == 2)
    assert ex.stats["redis_data_lost"] == 1


def test_bad_or_unreachable_broker_is_one_line(redis_db):
    with pytest.raises(SpecError, match="not a Redis URL"):
        executor_from_url("amqp://localhost")
    with pytest.raises(SpecError, match="cannot reach the broker"):
        executor_from_url("redis://127.0.0.1:1/0")


def test_two_executors_never_read_each_others_results(redis_db, ledger):
    with CeleryExecutor(redis_db, max_in_flight=1, poll_interval_s=0.1) as a, \
            CeleryExecutor(redis_db, max_in_flight=1, poll_interval_s=0.1) as b:
        fa, fb = a.submit(make_task(0)), b.submit(make_task(0))  # same study:trial:stage key
        result = EvalResult(key="st:0:full", quality={"kl": 1.0})
        ledger.finish(f"{a.id}/st:0:full", "t", {"ok": True, "result": result.model_dump(mode="json")}, a._notices)
        assert fa.result(timeout=5) == result
        time.sleep(0.3)
        assert not fb.done()


def test_warns_when_no_worker_serves_a_measurement_queue(ex, caplog):
    ex.submit(make_task(0, measure=True, device="rpi5"))
    wait_for(lambda: "no worker consumes devicefit.device.rpi5" in caplog.text, timeout_s=10)
    assert "search-cli worker --device rpi5" in caplog.text
