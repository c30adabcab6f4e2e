"""Fixtures for the service tests: an app on a temporary SQLite database, with or without a broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.support.services import free_port, stop_process  # noqa: F401 - free_port: used by the tests


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


# ---- a real Celery worker on a private redis-server ---------------------------------------------

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def celery_worker(session_redis, tmp_path_factory):
    """`search-cli worker` as a subprocess on a private Redis (2 evaluation processes + search threads)."""
    import os
    import subprocess
    import sys

    from tests.support.services import ServiceUnavailable, wait_until

    tmp = tmp_path_factory.mktemp("worker")
    log = open(tmp / "worker.log", "w")  # noqa: SIM115 - closed at teardown
    env = dict(os.environ, DEVICEFIT_RESULTS=str(tmp / "results"), PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "search.cli.main", "worker", "--broker", session_redis.url,
                             "--concurrency", "2", "--threads", "1", "--loglevel", "info"],
                            cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:  # two Celery processes: the evaluation pool and the search runner
        wait_until(lambda: (tmp / "worker.log").read_text().count(" ready.") >= 2, 90, "search-cli worker", proc,
                   tmp / "worker.log")
    except ServiceUnavailable as exc:
        stop_process(proc, group=True)
        pytest.fail(str(exc), pytrace=False)
    yield {"broker": session_redis.url, "log": tmp / "worker.log"}
    stop_process(proc, group=True)
    log.close()


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


@pytest.fixture(scope="session")
def served(celery_worker, tmp_path_factory):
    """`search-cli serve` on a free port, its own SQLite database, the test worker's broker."""
    import os
    import subprocess
    import sys
    import urllib.request

    from tests.support.services import ServiceUnavailable, wait_until

    tmp = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = dict(os.environ, DEVICEFIT_ARTIFACT_DIR=str(tmp / "artifacts"), PYTHONPATH=str(REPO))
    env.pop("DEVICEFIT_API_TOKEN", None)
    log = open(tmp / "serve.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen([sys.executable, "-m", "search.cli.main", "serve", "--port", str(port),
                             "--database-url", f"sqlite:///{tmp / 'jobs.db'}", "--broker", celery_worker["broker"],
                             "--log-level", "warning"], cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2)
            return True
        except OSError:
            return False

    try:
        wait_until(answers, 60, "search-cli serve", proc, tmp / "serve.log")
    except ServiceUnavailable as exc:
        stop_process(proc)
        pytest.fail(str(exc), pytrace=False)
    yield url
    stop_process(proc)
    log.close()
