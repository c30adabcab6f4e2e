"""The search lease and the watchdog against a real (private) Redis, without Celery workers."""

from __future__ import annotations

import time

import pytest
import redis

from workers.search_lease import ACTIVE, LeaseHeld, SearchLease, lapsed, lease_key
from workers.watchdog import resend_lapsed

pytestmark = pytest.mark.integration


@pytest.fixture
def r(redis_db, monkeypatch):
    monkeypatch.setenv("DEVICEFIT_SEARCH_LEASE_TTL", "0.4")
    client = redis.Redis.from_url(redis_db)
    yield client
    client.close()


class FakeApp:
    def __init__(self):
        self.sent = []

    def send_task(self, name, kwargs, task_id, queue):
        self.sent.append((name, kwargs, task_id, queue))


def test_one_holder_a_second_copy_is_refused_and_a_finished_search_never_runs_again(r):
    first, second = SearchLease(r, "s1", "w1"), SearchLease(r, "s1", "w2")
    with first.held("job-s1", {"spec": {"x": 1}}, "devicefit.searches"):
        with pytest.raises(LeaseHeld, match="is running on w1:"):
            second.take()
        time.sleep(1.0)  # longer than the TTL: the heartbeat keeps it
        assert r.get(lease_key("s1")).decode() == first.token
        assert lapsed(r) == []
    first.finish()
    assert r.hget(ACTIVE, "s1") is None and r.get(lease_key("s1")) is None
    with pytest.raises(LeaseHeld, match="already finished"):
        SearchLease(r, "s1", "w3").take()


def test_a_lapsed_lease_is_re_sent_once(r):
    dead = SearchLease(r, "s2", "w1")
    dead.take()
    r.hset(ACTIVE, "s2", '{"task_id": "job-s2", "kwargs": {"spec": {}}, "queue": "devicefit.searches"}')
    app = FakeApp()
    assert resend_lapsed(app, r) == []  # the lease still lives
    time.sleep(0.6)  # no heartbeat: it lapses, as when the runner was SIGKILLed
    assert [s for s, _ in lapsed(r)] == ["s2"]
    assert resend_lapsed(app, r, revoked={"job-s2"}) == []  # a cancelled search is not resumed
    assert resend_lapsed(app, r) == ["s2"]
    assert resend_lapsed(app, r) == []  # the guard: one re-send per period, whatever the watchdogs
    assert app.sent == [("devicefit.run_search", {"spec": {}}, "job-s2", "devicefit.searches")]


def test_the_registry_comes_back_after_redis_lost_its_data(r):
    lease = SearchLease(r, "s3", "w1")
    with lease.held("job-s3", {"spec": {}}, "devicefit.searches"):
        r.flushall()  # a Redis restart without persistence
        time.sleep(0.5)
        assert r.get(lease_key("s3")).decode() == lease.token and r.hget(ACTIVE, "s3") is not None
