"""Downloads without a worker: addressed by trial, built elsewhere (202 until ready), cached under a cap.

The worker's side is played by a fake dispatcher that writes the archive where it was asked to;
tests/service/test_with_worker.py builds a real one on a real worker.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import optuna
from fastapi.testclient import TestClient

from service.archives import Archives
from service.main import create_app
from tests.service.conftest import TINY, make_settings
from tests.service.test_views import _trial


def job_with_trials(client, n: int = 6) -> tuple[str, list[int]]:
    """A submitted job whose study holds n finished trials (as if a worker had run it)."""
    job = client.post("/search", json=TINY).json()["id"]
    services = client.app.state.services
    row = services.jobs.store.get(job)
    study = optuna.create_study(study_name=row.study_name, storage=row.storage_url,
                                directions=["maximize", "minimize", "minimize"])
    rng = random.Random(3)
    for i in range(n):
        study.add_trial(_trial(i, rng))
    front = client.get(f"/search/{job}").json()["front"]
    return job, [c["trial"] for c in front]


def test_a_download_is_built_elsewhere_then_served_by_trial(tmp_path, monkeypatch):
    app = create_app(make_settings(tmp_path, dispatch=True))
    dispatcher = app.state.services.jobs.dispatcher
    asked = []
    monkeypatch.setattr(dispatcher, "submit", lambda job_id, spec: None)
    monkeypatch.setattr(dispatcher, "serves", lambda queue: True)
    monkeypatch.setattr(dispatcher, "export",
                        lambda spec, trial, target, fmt: asked.append((spec, trial, target, fmt)))
    with TestClient(app) as client:
        job, trials = job_with_trials(client)
        trial = trials[-1]
        r = client.get(f"/search/{job}/candidates/{len(trials) - 1}/download", follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"] == f"/search/{job}/trials/{trial}/download"
        url = r.headers["location"]
        first = client.get(url)
        assert first.status_code == 202 and first.headers["retry-after"] == "2"
        assert first.json()["status"] == "preparing"
        assert client.get(url).status_code == 202
        assert len(asked) == 1, "one build is asked for, however often the page polls"
        spec, asked_trial, target, fmt = asked[0]
        assert asked_trial == trial and spec["study_name"] == f"job-{job}" and spec["storage"]
        assert fmt == "gguf"  # TINY's device (rpi5) runs llama.cpp
        # the worker writes the archive where it was asked to
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_bytes(b"\x1f\x8b fake archive")
        done = client.get(url)
        assert done.status_code == 200 and done.headers["content-type"] == "application/gzip"
        assert done.content == b"\x1f\x8b fake archive"
        assert f"trial{trial}" in done.headers["content-disposition"]
        assert client.get(f"/search/{job}/candidates/0").json()["download"].startswith(f"/search/{job}/trials/")
        # another format is another archive, asked for once; a format that does not exist is a 422
        assert client.get(url + "?format=hf").status_code == 202 and asked[-1][3] == "hf"
        bad = client.get(url + "?format=onnx")
        assert bad.status_code == 422 and "format" in bad.text
        # a worker that cannot express the candidate in the asked format leaves the reason: a 4xx, not "preparing"
        hf_target = Path(asked[-1][2])
        hf_target.with_name(hf_target.name + ".error").write_text("--format hf cannot express layer 'x' in Q4_K\n")
        refused = client.get(url + "?format=hf")
        assert refused.status_code == 422 and "cannot express" in refused.json()["detail"]


def test_unknown_trials_and_no_task_queue_are_404(client):
    job, trials = job_with_trials(client)
    r = client.get(f"/search/{job}/trials/999/download")
    assert r.status_code == 404 and r.json()["detail"].startswith("trial: search")
    r = client.get(f"/search/{job}/trials/{trials[0]}/download")
    assert r.status_code == 404 and "no task queue" in r.json()["detail"]


def test_the_archive_cache_evicts_the_least_recently_used_over_its_cap(tmp_path):
    archives = Archives(tmp_path, max_bytes=2500)
    paths = [archives.path("job", t) for t in range(4)]
    for i, path in enumerate(paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 1000)
        os.utime(path, (time.time() - 100 + i, time.time() - 100 + i))
    assert archives.ready(paths[0])  # used now: the newest
    removed = archives.evict(keep=paths[1])
    assert removed == [paths[2]] or removed == [paths[2], paths[3]]
    assert sorted(p.name for p in tmp_path.glob("*/*.tar.gz")) == sorted(
        p.name for p in paths if p not in removed)
    assert sum(p.stat().st_size for p in tmp_path.glob("*/*.tar.gz")) <= 2500
    assert paths[0].exists() and paths[1].exists()
