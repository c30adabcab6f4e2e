"""Fixtures for the service tests: an app on a temporary SQLite database, with or without a broker."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings


def make_settings(tmp: Path, **changes) -> Settings:
    base = Settings(database_url=f"sqlite:///{tmp / 'jobs.db'}", artifact_dir=tmp / "artifacts", dispatch=False)
    return base.with_(**changes)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def client(settings):
    """A client of an app that stores jobs but sends them nowhere (no broker needed)."""
    with TestClient(create_app(settings)) as c:
        yield c


TINY = {"model": "demo:minilm", "device": "rpi5", "workload": "encode:128", "budget": {"max_latency": "200ms"},
        "trials": 6}


# ---- a real Celery worker on a private Redis database --------------------------------------------

REDIS_URL = "redis://127.0.0.1:6379/13"  # DB 13: apart from other helpers' tests (they use 0 or their own)
REPO = Path(__file__).resolve().parents[2]


def redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception:  # noqa: BLE001 - no server: the test cannot run here
        pytest.skip(f"Redis is not answering at {REDIS_URL} (scripts/test-env.sh starts it)")


@pytest.fixture(scope="session")
def celery_worker(tmp_path_factory):
    """`search-cli worker` as a subprocess on REDIS_URL (queues general + searches, 2 processes)."""
    import os
    import subprocess
    import sys
    import time

    import redis

    redis_or_skip()
    redis.Redis.from_url(REDIS_URL).flushdb()
    tmp = tmp_path_factory.mktemp("worker")
    log = open(tmp / "worker.log", "w")  # noqa: SIM115 - closed at teardown
    env = dict(os.environ, DEVICEFIT_RESULTS=str(tmp / "results"), PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "search.cli.main", "worker", "--broker", REDIS_URL,
                             "--concurrency", "2", "--threads", "1", "--loglevel", "info"],
                            cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while "ready." not in (tmp / "worker.log").read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the Celery worker did not start:\n" + (tmp / "worker.log").read_text()[-3000:])
        time.sleep(0.3)
    yield {"broker": REDIS_URL, "log": tmp / "worker.log"}
    _stop(proc, log)


def wait_for(client, job_id: str, until, timeout: float = 240.0) -> dict:
    """Poll GET /search/{id} until `until(detail)` holds; fails with the last detail on timeout."""
    import time

    deadline = time.monotonic() + timeout
    detail = {}
    while time.monotonic() < deadline:
        detail = client.get(f"/search/{job_id}").json()
        if until(detail):
            return detail
        time.sleep(1.0)
    pytest.fail(f"search {job_id} did not get there in {timeout:.0f}s; last: {detail}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def served(celery_worker, tmp_path_factory):
    """`search-cli serve` on a free port, its own SQLite database, the test worker's broker."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    tmp = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = dict(os.environ, DEVICEFIT_ARTIFACT_DIR=str(tmp / "artifacts"), PYTHONPATH=str(REPO))
    env.pop("DEVICEFIT_API_TOKEN", None)
    log = open(tmp / "serve.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen([sys.executable, "-m", "search.cli.main", "serve", "--port", str(port),
                             "--database-url", f"sqlite:///{tmp / 'jobs.db'}", "--broker", celery_worker["broker"],
                             "--log-level", "warning"], cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("search-cli serve did not start:\n" + (tmp / "serve.log").read_text()[-3000:])
            time.sleep(0.3)
    yield url
    _stop(proc, log)


def _stop(proc: subprocess.Popen, log) -> None:
    """Ask a served subprocess to stop, kill it if it will not, and close its log."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
