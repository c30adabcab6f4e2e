"""run_once: the worker side of idempotency, against a real Redis (no Celery)."""

from __future__ import annotations

import threading
import time

import pytest

from search.errors import RecipeError
from search.executor import EvalResult, EvalTask
from search.recipe import CompressionConfig
from search.spec import SearchSpec
from workers.ledger import Ledger, key_of, redis_client
from workers.run_once import run_once

pytestmark = pytest.mark.integration


@pytest.fixture
def ledger(redis_db, monkeypatch):
    monkeypatch.setenv("DEVICEFIT_HEARTBEAT_TTL", "1")
    lg = Ledger(redis_client(redis_db))
    yield lg
    lg.r.close()


def make_task(trial: int = 0) -> EvalTask:
    return EvalTask(study="s", trial=trial, spec=SearchSpec(), recipe=CompressionConfig.uniform(bits=8))


class Counting:
    """An evaluate function that counts its calls."""

    def __init__(self, delay_s: float = 0.0, error: Exception | None = None):
        self.calls, self.delay_s, self.error = 0, delay_s, error

    def __call__(self, task: EvalTask) -> EvalResult:
        self.calls += 1
        time.sleep(self.delay_s)
        if self.error:
            raise self.error
        return EvalResult(key=task.key, quality={"kl": 0.5}, seconds=self.delay_s)


def test_second_delivery_returns_stored_outcome_without_rerunning(ledger):
    evaluate = Counting()
    first = run_once(ledger, make_task(), evaluate, worker="a", notify="n")
    second = run_once(ledger, make_task(), evaluate, worker="b", notify="n")
    assert evaluate.calls == 1
    assert first == second and first["ok"] and first["result"]["quality"] == {"kl": 0.5}
    assert first["result"]["worker"] == "a"
    assert ledger.r.lrange("n", 0, -1) == [b"s:0:full", b"s:0:full"]  # both copies woke the executor
    assert ledger.r.get(key_of("claim", "s:0:full")) is None  # the claim is dropped after the result


def test_user_error_is_an_outcome_not_a_crash(ledger):
    outcome = run_once(ledger, make_task(), Counting(error=RecipeError("bits 9 is not supported")), worker="a")
    assert outcome["ok"] is False and outcome["user_error"] is True
    assert outcome["error_type"] == "RecipeError" and "bits 9" in outcome["error"]
    assert ledger.result("s:0:full") == outcome


def test_copy_waits_for_a_live_run_instead_of_duplicating_it(ledger):
    evaluate = Counting(delay_s=1.5)  # longer than the 1 s claim TTL: the heartbeat must keep it
    runner = threading.Thread(target=run_once, args=(ledger, make_task(), evaluate), kwargs={"worker": "a"})
    runner.start()
    time.sleep(0.2)
    duplicate = run_once(ledger, make_task(), evaluate, worker="b")
    runner.join()
    assert evaluate.calls == 1
    assert duplicate["ok"] and duplicate["worker"] == "a"


def test_copy_takes_over_when_the_runner_died(ledger):
    key = "s:0:full"
    assert ledger.claim(key, "dead-runner") == 1  # claimed, then never refreshed: its process was killed
    assert ledger.claim(key, "another") == 0  # while the claim lives, nobody else runs it
    evaluate = Counting()
    outcome = run_once(ledger, make_task(), evaluate, worker="b")
    assert evaluate.calls == 1 and outcome["ok"] and outcome["attempt"] == 2


def test_candidate_that_keeps_killing_workers_fails_for_good(ledger, monkeypatch):
    monkeypatch.setenv("DEVICEFIT_MAX_ATTEMPTS", "2")
    key = "s:0:full"
    for i in range(2):  # two runs started and died
        assert ledger.claim(key, f"run{i}") == i + 1
        ledger.r.delete(key_of("claim", key))
    evaluate = Counting()
    outcome = run_once(ledger, make_task(), evaluate, worker="c")
    assert evaluate.calls == 0
    assert outcome["ok"] is False and "killed its worker 2 times" in outcome["error"]
