"""The JSON API without workers: validation, refusals, pagination, cancel, OpenAPI."""

from __future__ import annotations

import subprocess
import sys

from fastapi.testclient import TestClient

from service.main import create_app
from tests.service.conftest import TINY, make_settings


def test_submit_answers_202_with_links_and_the_job_reads_back(client):
    r = client.post("/search", json=TINY)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued"
    assert r.headers["location"] == body["links"]["self"] == f"/search/{body['id']}"
    detail = client.get(body["links"]["self"]).json()
    assert detail["spec"]["model"] == "demo:minilm"
    assert detail["spec"]["trials"] == 6
    assert detail["spec"]["storage"] is None  # the storage URL is not shown (it may hold credentials)
    assert detail["spec"]["study_name"] == f"job-{body['id']}"
    assert detail["progress"] == {"completed": 0, "total": 6, "running": 0, "failed": 0, "infeasible": 0,
                                  "feasible": 0, "full_evaluations": 0, "front_size": 0, "elapsed_s": None,
                                  "fraction": 0.0}
    assert detail["front"] == []
    assert detail["metric"] == "cosine" and detail["higher_is_better"] is True
    assert detail["budget_ms"] == 200.0


def test_validation_errors_are_422_naming_the_field(client):
    cases = {
        "body.budget.max_latency": {"budget": {"max_latency": "200"}},
        "body.trials": {"trials": 0},
        "body.workload": {"workload": "chat:12"},
        "body.space.bits": {"space": {"bits": [7]}},
        "body.colour": {"colour": "red"},
        "body.objectives": {"objectives": ["latency"]},
    }
    for field, body in cases.items():
        r = client.post("/search", json=body)
        assert r.status_code == 422, (body, r.text)
        detail = r.json()["detail"]
        # field errors lead with their path; whole-spec rules name the field in the message
        assert detail.startswith(field) or field.split(".")[-1] in detail, (field, detail)


def test_bad_json_and_wrong_types_are_4xx(client):
    r = client.post("/search", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["detail"]
    r = client.post("/search", json=["a", "list"])
    assert r.status_code == 422
    r = client.post("/search", json={"trials": "many"})
    assert r.status_code == 422 and r.json()["detail"].startswith("body.trials")


def test_refusals_are_400_with_the_reason(client):
    for body, words in [
        ({"model": "../../etc/passwd"}, "model: '../../etc/passwd'"),
        ({"model": "/etc/passwd"}, "model: '/etc/passwd'"),
        ({"model": "demo:nope"}, "unknown demo model"),
        ({"device": "/etc/passwd"}, "device: unknown device"),
        ({"device": "toaster"}, "known devices"),
        ({"storage": "sqlite:////tmp/x.db"}, "storage:"),
        ({"study_name": "mine"}, "study_name:"),
        ({"budget": {"max_latency": "0.001ms"}}, "budget: no candidate can meet max_latency"),
    ]:
        r = client.post("/search", json={**TINY, **body})
        assert r.status_code == 400, (body, r.text)
        assert words in r.json()["detail"], (body, r.json())


def test_paths_must_lie_under_the_model_roots(tmp_path):
    root = tmp_path / "models"
    model = root / "mini"
    model.mkdir(parents=True)
    (model / "config.json").write_text('{"model_type": "bert", "hidden_size": 64, "num_hidden_layers": 2, '
                                       '"num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 384, '
                                       '"max_position_embeddings": 256}')
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.json").write_text((model / "config.json").read_text())
    (root / "escape").symlink_to(outside)  # a symlink inside the root pointing out of it
    custom = root / "custom"
    custom.mkdir()
    (custom / "config.json").write_text('{"model_type": "bert", "auto_map": {"AutoModel": "x.Y"}}')
    with TestClient(create_app(make_settings(tmp_path, model_roots=(root.resolve(),)))) as c:
        ok = c.post("/search", json={**TINY, "model": "mini", "budget": {"max_latency": "1s"}})
        assert ok.status_code == 202, ok.text
        assert c.get(ok.json()["links"]["self"]).json()["model"] == str(model.resolve())
        ok = c.post("/search", json={**TINY, "model": str(model), "budget": {"max_latency": "1s"}})
        assert ok.status_code == 202, ok.text
        for ref in [str(outside), "escape", "mini/../../outside", "../outside", "/etc/passwd"]:
            r = c.post("/search", json={**TINY, "model": ref})
            assert r.status_code == 400, (ref, r.text)
            assert r.json()["detail"].startswith("model:"), r.json()
        r = c.post("/search", json={**TINY, "model": "custom"})
        assert r.status_code == 400 and "trust_remote_code" in r.json()["detail"]


def test_token_guards_mutating_routes_only(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, api_token="s3cret"))) as c:
        assert c.post("/search", json=TINY).status_code == 401
        assert c.post("/search", json=TINY, headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = c.post("/search", json=TINY, headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 202
        job = r.json()["id"]
        assert c.get(f"/search/{job}").status_code == 200  # reading needs no token
        assert c.get("/search").status_code == 200
        assert c.delete(f"/search/{job}").status_code == 401
        assert c.delete(f"/search/{job}", headers={"Authorization": "Bearer s3cret"}).json()["status"] == "cancelled"


def test_request_size_limit(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, max_request_bytes=2000))) as c:
        r = c.post("/search", json={**TINY, "calibration_text": "x" * 5000})
        assert r.status_code == 413
        assert "limit of 2000 bytes" in r.json()["detail"]

        def chunks():  # no Content-Length: the limit counts the bytes read
            yield b'{"calibration_text": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}'

        r = c.post("/search", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413


def test_pagination_newest_first(client):
    ids = [client.post("/search", json={**TINY, "seed": i}).json()["id"] for i in range(5)]
    page = client.get("/search?limit=2").json()
    assert page["total"] == 5 and [j["id"] for j in page["items"]] == ids[::-1][:2]
    assert page["next"] == "/search?offset=2&limit=2"
    last = client.get("/search?offset=4&limit=2").json()
    assert [j["id"] for j in last["items"]] == [ids[0]] and last["next"] is None
    assert client.get("/search?status=queued").json()["total"] == 5
    assert client.get("/search?status=bogus").status_code == 422
    assert client.get("/search?limit=0").status_code == 422


def test_missing_things_are_404(client):
    assert client.get("/search/nope").status_code == 404
    assert client.delete("/search/nope").status_code == 404
    job = client.post("/search", json=TINY).json()["id"]
    r = client.get(f"/search/{job}/candidates/0")
    assert r.status_code == 404 and "no candidates yet" in r.json()["detail"]
    assert client.get(f"/search/{job}/candidates/-1").status_code == 422
    assert client.get("/searches/nope").status_code == 404


def test_cancel_a_queued_job_and_cancel_is_final(client):
    job = client.post("/search", json=TINY).json()["id"]
    assert client.delete(f"/search/{job}").json()["status"] == "cancelled"
    assert client.delete(f"/search/{job}").json()["status"] == "cancelled"
    assert client.get(f"/search/{job}").json()["error"] == "cancelled by request"


def test_devices_and_health(client):
    devices = client.get("/devices").json()
    assert "rpi5" in [d["name"] for d in devices]
    assert all(d["memory_gb"] > 0 for d in devices)
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["database"] == "ok"


def test_openapi_documents_the_one_schema_with_examples(client):
    schema = client.get("/openapi.json").json()
    post = schema["paths"]["/search"]["post"]
    body = post["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/SearchSpec")
    assert "minilm-on-rpi5" in body["examples"]
    assert {"202", "400", "401", "413", "422"} <= set(post["responses"])
    assert "/search/{search_id}/candidates/{k}/download" in schema["paths"]


def test_pages_render_without_any_external_resource(client):
    job = client.post("/search", json=TINY).json()["id"]
    for url in ["/", "/new", f"/searches/{job}"]:
        html = client.get(url).text
        assert "http://" not in html and "https://" not in html, url
        for asset in ["/static/app.css", "/static/format.js"]:
            assert asset in html
    assert client.get("/static/plot.js").status_code == 200
    assert job in client.get("/").text


def test_import_service_main_does_not_import_torch():
    code = "import sys, service.main; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_broker_that_is_down_fails_the_job_not_the_request(tmp_path):
    settings = make_settings(tmp_path, dispatch=True, broker_url="redis://127.0.0.1:1/0")  # nothing listens there
    with TestClient(create_app(settings)) as c:
        r = c.post("/search", json=TINY)
        assert r.status_code == 202 and r.json()["status"] == "failed"
        error = c.get(r.json()["links"]["self"]).json()["error"]
        assert error.startswith("could not reach the task queue at redis://127.0.0.1:1/0")
        assert "\n" not in error


def test_no_page_loads_anything_from_a_cdn(client):
    """/docs is Swagger UI from the swagger-ui-py package, served by the app under its CSP."""
    import re

    html = client.get("/docs").text
    assert "http://" not in html and "https://" not in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/swagger/swagger-ui-bundle.js" in assets and "/static/swagger-init.js" in assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert "<script>" not in html  # no inline script: the CSP forbids it
    assert client.get("/openapi.json").status_code == 200


def test_a_profile_that_does_not_load_is_left_out_not_a_4xx(client, monkeypatch):
    import search.hw_profiles.profile as profiles
    from search.errors import DeviceError

    real = profiles.load_profile
    monkeypatch.setattr(profiles, "load_profile",
                        lambda name, *a, **k: (_ for _ in ()).throw(DeviceError("broken file")) if name == "rpi5"
                        else real(name, *a, **k))
    r = client.get("/devices")
    names = [d["name"] for d in r.json()]
    assert r.status_code == 200 and "rpi5" not in names and names
    assert client.get("/new").status_code == 200
