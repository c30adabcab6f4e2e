"""Fixtures for the worker tests: a private redis-server and real `search-cli worker` processes.

Every test module gets its own redis-server on a free port (tests/support/services.py; the restart
test kills it), started with no persistence, like the CI's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.services import RedisServer

ROOT = Path(__file__).resolve().parents[2]
# short timings so crash recovery shows up in seconds, not the production minutes
# (DEVICEFIT_TEST_SEARCH_LEASE_TTL=30 measures the resume time with the production lease)
FAST_ENV = {"DEVICEFIT_HEARTBEAT_TTL": "3", "DEVICEFIT_VISIBILITY_TIMEOUT": "60",
            "DEVICEFIT_SEARCH_LEASE_TTL": os.environ.get("DEVICEFIT_TEST_SEARCH_LEASE_TTL", "3")}


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """A private redis-server per module (the restart test kills it); a failure to start fails the tests."""
    from tests.conftest import started

    server = started(RedisServer(tmp_path_factory.mktemp("redis")))
    yield server
    server.stop()


@pytest.fixture
def redis_db(redis_server):
    """A clean database on the private server, and its URL."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield redis_server.url
    client.close()


class Worker:
    """One `search-cli worker` process (its own process group, so a SIGKILL takes its children too)."""

    def __init__(self, broker: str, name: str, logdir: Path, concurrency: int = 1, queues: str = "general",
                 extra_env=None, search_threads: int = 4):
        self.name = f"{name}@{socket.gethostname()}"
        self.log = logdir / f"{name}.log"
        names = queues.split(",")
        # `search-cli worker` runs one Celery process for evaluations and one for searches
        self.processes = int("searches" in names) + int(any(q != "searches" for q in names))
        env = {**os.environ, **FAST_ENV, **(extra_env or {}), "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "search.cli.main", "worker", "--broker", broker, "--queues", queues,
             "--concurrency", str(concurrency), "--search-threads", str(search_threads), "--threads", "1",
             "--name", self.name, "--loglevel", "info"],
            cwd=ROOT, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.log.read_text()[-3000:]}")
            if self.log.read_text().count(" ready.") >= self.processes:
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker {self.name} not ready after {timeout_s} s:\n{self.log.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """SIGKILL the whole worker: parent and pool children, no chance to clean up."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()


class WorkerPool:
    """Worker processes shared by a module's tests (starting one costs seconds); dead ones are replaced."""

    def __init__(self, broker: str, logdir: Path):
        self.broker, self.logdir, self.started = broker, logdir, 0
        self.workers: list[Worker] = []
        self.extras: list[Worker] = []

    def ensure(self, n: int, **kwargs) -> list[Worker]:
        """n live general workers (the first n started and still alive, topped up)."""
        self.workers = [w for w in self.workers if w.proc.poll() is None]
        while len(self.workers) < n:
            self.started += 1
            self.workers.append(Worker(self.broker, f"w{self.started}", self.logdir, **kwargs))
        for w in self.workers:
            w.wait_ready()
        return self.workers[:n]

    def extra(self, name: str, **kwargs) -> Worker:
        """A worker with its own settings, outside the pool's count."""
        w = Worker(self.broker, name, self.logdir, **kwargs)
        self.extras.append(w)
        w.wait_ready()
        return w

    def stop_extras(self) -> None:
        for w in self.extras:
            w.stop()
        self.extras = []

    def stop_all(self) -> None:
        for w in self.workers + self.extras:
            w.stop()


@pytest.fixture(scope="module")
def worker_pool(redis_server, tmp_path_factory):
    pool = WorkerPool(redis_server.url, tmp_path_factory.mktemp("worker-logs"))
    yield pool
    pool.stop_all()


@pytest.fixture(scope="module")
def tiny_llama_ref(tmp_path_factory) -> str:
    """A tiny Llama architecture (random weights) as a config.json the worker processes can load."""
    from tests.conftest import tiny_config

    path = tmp_path_factory.mktemp("model") / "tiny-llama.json"
    path.write_text(json.dumps(tiny_config("llama")))
    return str(path)


@pytest.fixture
def search_runner(worker_pool, tmp_path) -> Worker:
    """A worker that runs whole searches (queue devicefit.searches) for one test; the pool evaluates."""
    worker_pool.ensure(2)
    runner = worker_pool.extra("runner", queues="searches", extra_env={"DEVICEFIT_RESULTS": str(tmp_path)})
    yield runner
    worker_pool.stop_extras()
