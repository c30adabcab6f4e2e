"""Every bad input is a 4xx naming the field, every cost has a ceiling naming the limit, and the
OpenAPI schema and headers say what the service really does (issue 12, 'every bad input is a 4xx')."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Limits
from tests.service.conftest import TINY, make_settings


def post_raw(client, body: dict):
    """POST with ASCII escapes, so a lone surrogate or a NUL travels as JSON allows it."""
    return client.post("/search", content=json.dumps(body, ensure_ascii=True),
                       headers={"content-type": "application/json"})


@pytest.mark.parametrize("change, field, words", [
    ({"model": "org/na\u0000me"}, "body.model", "NUL byte"),
    ({"calibration_text": "text \ud800 more"}, "body.calibration_text", "lone surrogate"),
    ({"space": {"axes": ["bits"], "granularity": "mo\u0000del"}}, "body.space.granularity", ""),
    ({"budget": {"max_latency": "1e309ms"}}, "body.budget.max_latency", "not a finite duration"),
    ({"budget": {"max_memory": "1e400GB"}}, "body.budget.max_memory", "not a finite size"),
    ({"time_limit": "1e309s"}, "body.time_limit", "not a finite duration"),
    ({"space": {"sparsity": [float("nan")]}}, "body.space.sparsity", "must be in [0, 1)"),
])
def test_unstorable_text_and_non_finite_numbers_are_422_naming_the_field(client, change, field, words):
    r = post_raw(client, {**TINY, **change})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(field + ": ") and words in r.json()["detail"]


def test_a_nul_byte_with_model_roots_configured_is_still_422(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, model_roots=(tmp_path,)))) as client:
        r = post_raw(client, {**TINY, "model": "org/na\u0000me"})
    assert r.status_code == 422 and r.json()["detail"].startswith("body.model: contains a NUL byte")


@pytest.mark.parametrize("change, words", [
    ({"trials": 5000}, "trials: 5000 is more than this server allows (2000; set by DEVICEFIT_MAX_TRIALS)"),
    ({"seq_len": 8192}, "seq_len: 8192 is more than this server allows (2048; set by DEVICEFIT_MAX_SEQ_LEN)"),
    ({"calib_samples": 4096}, "calib_samples: 4096 is more than this server allows (512;"),
    ({"recover": "100000000steps"}, "recover: 100000000steps is more than this server allows (2000steps;"),
    ({"recover": "2h"}, "recover: 2h is more than this server allows (600s; set by DEVICEFIT_MAX_RECOVERY_S)"),
    ({"time_limit": "48h"}, "time_limit: 48h is more than this server allows (86400s;"),
    ({"seed": 2**40}, "seed: 1099511627776 must be between 0 and 4294967295"),
    ({"calibration_text": "x" * 200_001}, "calibration_text: 200001 characters is more than this server allows"),
])
def test_every_cost_has_a_ceiling_and_the_refusal_names_it(client, change, words):
    r = client.post("/search", json={**TINY, **change})
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith(words)


def test_limits_come_from_the_environment_and_a_search_always_has_a_time_limit(tmp_path):
    limits = Limits.from_env({"DEVICEFIT_MAX_SEQ_LEN": "64", "DEVICEFIT_MAX_SEARCH_S": "600"})
    assert limits.max_seq_len == 64 and limits.max_search_s == 600.0 and limits.max_trials == Limits().max_trials
    with TestClient(create_app(make_settings(tmp_path, limits=limits))) as client:
        assert client.post("/search", json={**TINY, "seq_len": 128}).json()["detail"].startswith("seq_len: 128")
        small = {**TINY, "seq_len": 32}
        job = client.post("/search", json=small).json()["id"]
        assert client.get(f"/search/{job}").json()["spec"]["time_limit"] == "600s"  # the server's ceiling
        job = client.post("/search", json={**small, "time_limit": "5m"}).json()["id"]
        assert client.get(f"/search/{job}").json()["spec"]["time_limit"] == "5m"


def test_measure_is_refused_when_no_worker_serves_the_device(tmp_path, monkeypatch):
    settings = make_settings(tmp_path, dispatch=True)
    app = create_app(settings)
    asked = []
    dispatcher = app.state.services.jobs.dispatcher
    monkeypatch.setattr(dispatcher, "serves", lambda queue: asked.append(queue) or False)
    monkeypatch.setattr(dispatcher, "submit", lambda job_id, spec: None)
    with TestClient(app) as client:
        r = client.post("/search", json={**TINY, "measure": True})
        assert r.status_code == 400
        assert r.json()["detail"].startswith("measure: no worker measures on rpi5 (nobody consumes "
                                             "devicefit.device.rpi5)")
        assert asked == ["devicefit.device.rpi5"]
        monkeypatch.setattr(dispatcher, "serves", lambda queue: True)
        assert client.post("/search", json={**TINY, "measure": True}).status_code == 202


def test_odd_job_ids_are_404_not_a_database_error(client):
    for job_id in ("ab%00c", "x" * 40, "a%20b"):
        r = client.get(f"/search/{job_id}")
        assert r.status_code == 404 and r.json()["detail"].startswith("no search with id"), r.text


def test_405_names_every_method_of_the_path(client):
    r = client.put("/search/abc")
    assert r.status_code == 405 and r.headers["allow"] == "GET, DELETE"
    assert r.json()["detail"] == "method: PUT is not allowed here; use GET or DELETE"
    assert client.patch("/search").headers["allow"] == "GET, POST"


def test_openapi_errors_have_the_shape_of_the_real_bodies(client):
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert schema["components"]["schemas"]["Error"]["properties"]["detail"]["type"] == "string"
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/Error", (method, path, status)
    real = client.post("/search", json={"trials": 0})
    assert real.status_code == 422 and set(real.json()) == {"detail"} and isinstance(real.json()["detail"], str)


def test_every_openapi_example_is_accepted_offline(client):
    examples = client.get("/openapi.json").json()["paths"]["/search"]["post"]["requestBody"]["content"][
        "application/json"]["examples"]
    assert len(examples) >= 2
    for name, example in examples.items():
        r = client.post("/search", json=example["value"])
        assert r.status_code == 202, (name, r.text)


@pytest.mark.parametrize("path", ["/", "/new", "/searches/nope", "/search", "/devices"])
def test_security_headers_on_pages_and_api(client, path):
    r = client.get(path)
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"


def test_pages_have_no_inline_script(client, tmp_path):
    """The CSP forbids inline scripts: the pages carry data in JSON blocks and load code from /static."""
    import re

    job = client.post("/search", json=TINY).json()["id"]
    for path in ("/", "/new", f"/searches/{job}"):
        html = client.get(path).text
        for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S):
            assert "src=" in attrs or 'type="application/json"' in attrs, (path, attrs, body[:80])


def test_the_index_asks_the_task_backend_at_most_once_per_job_and_interval(tmp_path, monkeypatch):
    from service.dispatch import TaskState

    app = create_app(make_settings(tmp_path, dispatch=True))
    dispatcher = app.state.services.jobs.dispatcher
    calls = []
    monkeypatch.setattr(dispatcher, "submit", lambda job_id, spec: f"job-{job_id}")
    monkeypatch.setattr(dispatcher, "state", lambda task_id: calls.append(task_id) or TaskState("running"))
    monkeypatch.setattr(dispatcher, "serves", lambda queue: True)
    with TestClient(app) as client:
        jobs = [client.post("/search", json=TINY).json()["id"] for _ in range(5)]
        for _ in range(10):
            assert client.get("/").status_code == 200
    assert sorted(calls) == sorted(f"job-{j}" for j in jobs)  # 5 jobs x 10 pages: 5 questions
