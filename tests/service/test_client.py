"""`search-cli --server URL`: the search runs on the service; the CLI shows the same bar and table."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.service.conftest import REPO, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def cli(*args: str, cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("DEVICEFIT_API_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "search.cli.main", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=400)


def test_search_through_the_service_prints_the_front(served, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"calib_samples": 2, "seq_len": 32}))
    r = cli("--server", served, "--spec", str(spec), "--device", "rpi5", "--max-latency", "200ms",
            "--trials", "4", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "submitted search" in r.stderr and "search:" in r.stderr  # the progress bar
    assert "Pareto front:" in r.stdout and "latency" in r.stdout and "recipe" in r.stdout
    assert not (tmp_path / "devicefit-results").exists()  # nothing ran here


def test_refusals_and_an_unreachable_server_are_one_line(served, tmp_path):
    r = cli("--server", served, "--model", "../../etc/passwd", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: the service refused it (400): model: '../../etc/passwd' is a local path, and local paths are "
        "disabled on this server (no DEVICEFIT_MODEL_ROOTS); give a Hub id like 'org/name' or a demo: model"]
    r = cli("--server", f"http://127.0.0.1:{free_port()}", cwd=tmp_path)
    assert r.returncode == 2 and "error: cannot reach the service at http://127.0.0.1:" in r.stderr
    r = cli("--server", served, "--storage", "sqlite:///x.db", cwd=tmp_path)
    assert r.returncode == 2 and "chosen by the service" in r.stderr
