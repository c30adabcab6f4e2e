"""The "try it" box's API: POST a prompt for a candidate, poll its generation.

Without a worker: every refusal is a 4xx with a one-line reason (empty or too long prompt, tokens out of
range, an encoder, an unknown search/candidate/generation, no task queue). With a real Redis and a real
`search-cli worker`: a tiny causal LM's search runs to done, its candidate continues a prompt, and the
text is the one the candidate that the search scored writes (rebuilt here from the trial's record, whose
recorded quality it reproduces); a second prompt reuses the worker's built candidate; a prompt the model
cannot take fails with the worker's reason.
"""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from service import generations
from service.main import create_app
from tests.service.conftest import make_settings, wait_for
from tests.service.test_downloads import job_with_trials

PROMPT = "The quick brown fox"


def causal_spec(model: str, trials: int = 4) -> dict:
    return {"model": model, "device": "rpi5", "workload": "prefill:32", "budget": {"max_latency": "10s"},
            "trials": trials, "calib_samples": 2, "seq_len": 32}


@pytest.fixture(scope="module")
def tiny_llama_file(tmp_path_factory):
    """A tiny random Llama (byte vocabulary: every generated id is text) as a config.json under a model root."""
    from tests.conftest import tiny_config

    root = tmp_path_factory.mktemp("models")
    path = root / "tiny-llama.json"
    path.write_text(json.dumps(tiny_config("llama", vocab_size=256)))
    return path


# ---- refusals, without a worker -------------------------------------------------------------------------
def test_refusals_are_4xx_with_the_reason(client):
    job, trials = job_with_trials(client)  # demo:minilm: an encoder
    url = f"/search/{job}/candidates/0/generate"
    cases = [({"prompt": ""}, 422, "body.prompt: the prompt is empty"),
             ({"prompt": "   "}, 422, "body.prompt: the prompt is empty"),
             ({"prompt": "x" * 2001}, 422, "body.prompt: 2001 characters is more than this server allows (2000)"),
             ({"prompt": "a\x00b"}, 422, "body.prompt: contains a NUL byte"),
             ({"prompt": "hi", "max_new_tokens": 0}, 422, "body.max_new_tokens:"),
             ({"prompt": "hi", "max_new_tokens": 257}, 422, "body.max_new_tokens:"),
             ({"prompt": "hi", "temperature": 1}, 422, "body.temperature:"),
             ({"prompt": "hi"}, 400, "model: demo:minilm is an encoder; only causal language models generate text")]
    for body, status, reason in cases:
        r = client.post(url, json=body)
        assert r.status_code == status and r.json()["detail"].startswith(reason), (body, r.status_code, r.text)
    for where, reason in (("/search/nope/candidates/0/generate", "search"),
                          (f"/search/{job}/candidates/99/generate", "candidate 99 does not exist"),
                          (f"/search/{job}/trials/999/generate", "trial: search")):
        r = client.post(where, json={"prompt": "hi"})
        assert r.status_code == 404 and reason in r.json()["detail"], (where, r.text)
    r = client.get(f"/search/{job}/generations/gen-{job}-{trials[0]}-0123abcd")
    assert r.status_code == 404 and r.json()["detail"].startswith("generation: ")
    assert client.get(f"/search/{job}/generations/not-an-id").status_code == 422


def test_a_causal_candidate_without_a_task_queue_is_404(tmp_path, tiny_llama_file):
    app = create_app(make_settings(tmp_path, model_roots=(tiny_llama_file.parent,)))
    with TestClient(app) as client:
        job = client.post("/search", json=causal_spec(str(tiny_llama_file))).json()["id"]
        _finished_trial(client, job, 0)
        r = client.post(f"/search/{job}/trials/0/generate", json={"prompt": "hi"})
        assert r.status_code == 404 and "no task queue" in r.json()["detail"]
        page = client.get(f"/searches/{job}/candidates/0")
        assert page.status_code == 200 and 'id="try-form"' in page.text and "/static/try-it.js" in page.text


def test_with_a_server_token_the_post_needs_it(tmp_path, tiny_llama_file):
    app = create_app(make_settings(tmp_path, model_roots=(tiny_llama_file.parent,), api_token="s3cret"))
    with TestClient(app) as client:
        job = client.post("/search", json=causal_spec(str(tiny_llama_file)),
                          headers={"Authorization": "Bearer s3cret"}).json()["id"]
        _finished_trial(client, job, 0)
        assert client.post(f"/search/{job}/trials/0/generate", json={"prompt": "hi"}).status_code == 401
        r = client.post(f"/search/{job}/trials/0/generate", json={"prompt": "hi"},
                        headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 404 and "no task queue" in r.json()["detail"]  # past the token check
        assert 'id="needs-token"' in client.get(f"/searches/{job}/candidates/0").text


def test_the_encoder_page_has_no_try_it_box(client):
    job, _ = job_with_trials(client)
    page = client.get(f"/searches/{job}/candidates/0")
    assert page.status_code == 200 and "try-form" not in page.text


def _finished_trial(client, job: str, number: int) -> None:
    """One COMPLETE trial in the job's study, as a worker would have stored it."""
    import optuna

    from search.candidates import CANDIDATE_ATTR
    from search.recipe import CompressionConfig

    row = client.app.state.services.jobs.store.get(job)
    study = optuna.create_study(study_name=row.study_name, storage=row.storage_url,
                                directions=["minimize", "minimize", "minimize"])
    record = {"recipe": CompressionConfig.uniform(bits=8).model_dump(mode="json"), "quality": {"kl": 0.01},
              "latency_ms": 1.0, "memory_bytes": 10**5, "feasible": True, "stage": "full", "constraints": [0.0]}
    trial = optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, values=[0.01, 1.0, 1e5],
                                      user_attrs={CANDIDATE_ATTR: record})
    study.add_trial(trial)


def test_generation_ids_name_their_search_and_trial():
    task = generations.new_task_id("abc123", 7)
    assert generations.trial_of(task, "abc123") == 7
    assert generations.trial_of(task, "abc124") is None
    assert generations.trial_of("gen-abc123-7", "abc123") is None  # no random part: never issued
    assert generations.trial_of("gen-abc123-x-0f", "abc123") is None


def test_a_worker_answer_reads_as_done_or_failed():
    def celery(state, result=None):
        return SimpleNamespace(AsyncResult=lambda _id: SimpleNamespace(state=state, result=result))

    assert generations.outcome(celery("PENDING"), "x") is None  # never issued (or expired)
    assert generations.outcome(celery(generations.ISSUED), "x").status == "pending"
    assert generations.outcome(celery("STARTED"), "x").status == "pending"
    done = generations.outcome(celery("SUCCESS", {"text": "abc", "new_tokens": 3}), "x")
    assert done.status == "done" and done.result["text"] == "abc"
    refused = generations.outcome(celery("SUCCESS", {"error": "prompt (300 tokens) + 32 new tokens exceed"}), "x")
    assert refused.status == "failed" and refused.error.startswith("prompt (300 tokens)")
    crashed = generations.outcome(celery("FAILURE", RuntimeError("out of memory\nmore")), "x")
    assert crashed.status == "failed" and crashed.error == "RuntimeError: out of memory"


# ---- with a real Redis and a real Celery worker ----------------------------------------------------------
def generate(client, url: str, prompt: str, max_new_tokens: int, timeout_s: float = 120.0) -> tuple[dict, float]:
    """POST then poll every 50 ms: (the final answer, seconds from the POST to it)."""
    started = time.perf_counter()
    r = client.post(url, json={"prompt": prompt, "max_new_tokens": max_new_tokens})
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["status"] == "pending" and r.headers["location"] == accepted["links"]["self"]
    while time.perf_counter() - started < timeout_s:
        answer = client.get(accepted["links"]["self"])
        if answer.status_code == 200:
            return answer.json(), time.perf_counter() - started
        assert answer.status_code == 202 and answer.json()["status"] == "pending", answer.text
        time.sleep(0.05)
    pytest.fail(f"no answer in {timeout_s:.0f} s for {url}")


@pytest.mark.integration
@pytest.mark.slow
def test_a_worker_continues_a_prompt_with_the_scored_candidate(celery_worker, tmp_path, tiny_llama_file):
    settings = make_settings(tmp_path, broker_url=celery_worker["broker"], dispatch=True,
                             model_roots=(tiny_llama_file.parent,))
    with TestClient(create_app(settings)) as client:
        job = client.post("/search", json=causal_spec(str(tiny_llama_file))).json()["id"]
        detail = wait_for(client, job, lambda d: d["status"] in ("done", "failed", "cancelled"))
        assert detail["status"] == "done" and detail["front"], (detail, celery_worker["log"].read_text()[-3000:])
        candidate = detail["front"][-1]
        url = f"/search/{job}/candidates/{candidate['k']}/generate"

        first, first_s = generate(client, url, PROMPT, 12)
        assert first["status"] == "done", first
        assert first["trial"] == candidate["trial"] and first["new_tokens"] == 12 and first["text"]
        # each evaluation process keeps the last candidate it built: once the process that takes a prompt
        # has it (the worker has 2, either may take it), the answer only costs the decoding
        for _ in range(4):
            second, second_s = generate(client, url, PROMPT + " jumps", 12)
            assert second["status"] == "done", second
            if second["cached"]:
                break
        assert second["cached"] is True and second["build_seconds"] < first["build_seconds"], second
        print(f"POST to text, tiny Llama, 12 new tokens: {first_s:.2f} s building the candidate "
              f"(worker build {first['build_seconds']} s, cached={first['cached']}), {second_s:.2f} s warm")

        # the text is what the scored candidate writes: rebuilt here from the trial's record, it
        # reproduces the quality the search recorded, and greedily writes the same text
        from search.evaluation import loaded_model, score
        from search.spec import SearchSpec
        from search.text_generation import generate as generate_text
        from workers.artifacts import trial_record
        from workers.generation import build_candidate

        spec = SearchSpec.model_validate_json(client.app.state.services.jobs.store.get(job).spec)
        record = trial_record(spec, candidate["trial"])
        built = build_candidate(spec, record)
        policy = spec.data_policy.from_record(record["data"], spec.calibration_text)
        assert score(loaded_model(spec.model), built.model, policy)["kl"] == pytest.approx(
            record["quality"]["kl"], rel=1e-6, abs=1e-9)
        assert generate_text(built, PROMPT, 12, threads=1).text == first["text"]

        # a prompt the model cannot take: the worker's reason, as a finished generation that failed
        too_long, _ = generate(client, url, "x" * 250, 32)
        assert too_long["status"] == "failed" and "positions" in too_long["error"], too_long

        # generation ids are per search, and an id never issued is not "pending forever"
        other = client.post("/search", json=causal_spec(str(tiny_llama_file), trials=2)).json()["id"]
        assert client.get(f"/search/{other}/generations/{first['id']}").status_code == 404
        client.delete(f"/search/{other}")
        never = f"gen-{job}-{candidate['trial']}-00000000deadbeef"
        assert client.get(f"/search/{job}/generations/{never}").status_code == 404
        assert client.get(f"/search/{job}/generations/{first['id']}").json()["text"] == first["text"]
