"""Quality users recognise (issue 14, item 5): ``top1`` agreement beside kl/perplexity, and a held-out
``eval_text`` (--eval-text / SearchSpec.eval_text) that the evaluation rows come from, recorded with
every candidate, refused with one line (CLI exit 2, API 4xx) when it cannot be used."""

from __future__ import annotations

import json

import pytest

from search.cli.main import main
from search.data import MAX_TEXT_FILE_BYTES, calibration_batches, default_documents, policy_eval_batches
from search.data_policy import DataPolicy
from search.errors import SpecError
from search.evaluators.quality import QualityEvaluator, metric_names
from search.recipe import CompressionConfig
from search.spec import SearchSpec, parse_spec
from tests.conftest import tiny_config
from tests.service.conftest import TINY

HELD_OUT = "\n\n".join(default_documents()[:40])  # a text of its own, ~40 documents of the pydoc corpus
SMALL = DataPolicy(calib_rows=2, eval_rows=4, seq_len=32)


# ---- top1 ------------------------------------------------------------------------------------------
def test_top1_is_one_for_the_model_against_itself_and_drops_for_a_2bit_student(tiny_llama):
    from search.evaluation import compress

    assert metric_names(tiny_llama.graph) == ("kl", "perplexity", "top1")
    batches = policy_eval_batches(tiny_llama.tokenizer, SMALL)
    evaluator = QualityEvaluator(tiny_llama, batches)
    assert evaluator.evaluate(tiny_llama.model)["top1"] == 1.0

    student = compress(tiny_llama, CompressionConfig.uniform(bits=2, group_size=32), SMALL)
    quality = evaluator.evaluate(student)
    # the same fraction computed directly from both models' logits
    import torch

    with torch.inference_mode():
        want = (student(input_ids=batches).logits.float().argmax(-1)
                == tiny_llama.model(input_ids=batches).logits.float().argmax(-1)).float().mean()
    assert quality["top1"] == pytest.approx(float(want), abs=1e-6)
    assert quality["top1"] < 0.9 and quality["kl"] > 0


def test_encoders_keep_cosine_alone():
    from search.space.graph import graph_from_config

    assert metric_names(graph_from_config(tiny_config("bert"))) == ("cosine",)


# ---- eval_text: rows, recording ------------------------------------------------------------------------
def test_eval_text_gives_the_evaluation_rows_and_leaves_calibration_alone(tiny_llama):
    tok = tiny_llama.tokenizer  # bytes: a row decodes back to the text it came from
    held = SMALL.model_copy(update={"eval_text": HELD_OUT})
    rows = policy_eval_batches(tok, held)
    assert not rows.equal(policy_eval_batches(tok, SMALL))
    assert all(bytes(row.tolist()) in HELD_OUT.encode("utf-8") for row in rows)
    # calibration still takes the calib part of the calibration text
    assert calibration_batches(tok, held.text, "calib", 2, 32).equal(calibration_batches(tok, None, "calib", 2, 32))
    # all of it is usable: exactly rows x seq_len tokens suffice (as a calibration text, 80% would calibrate)
    exact = "abcdefgh" * 16
    assert policy_eval_batches(tok, DataPolicy(eval_text=exact, eval_rows=4, seq_len=32)).shape == (4, 32)
    with pytest.raises(SpecError, match="has only 128 tokens, but 5 samples x 32 tokens need 160"):
        policy_eval_batches(tok, DataPolicy(eval_text=exact, eval_rows=5, seq_len=32))


def test_eval_text_is_scored_on_and_recorded_with_the_candidate(tiny_llama):
    from search.evaluation import evaluate_recipe

    recipe = CompressionConfig.uniform(bits=3, group_size=32)
    plain = evaluate_recipe(tiny_llama, recipe, SMALL)
    held = evaluate_recipe(tiny_llama, recipe, SMALL.model_copy(update={"eval_text": HELD_OUT[:3000]}))
    assert held.quality["kl"] != plain.quality["kl"]
    assert held.as_json()["data"]["eval_text"] == HELD_OUT[:3000]
    assert "eval_text" not in plain.as_json()["data"]  # records without it read as they always did
    assert DataPolicy.from_record(held.as_json()["data"]) == held.policy


def test_a_long_eval_text_is_recorded_by_hash_and_needs_the_same_text_back():
    policy = DataPolicy(text="calibration " * 500, eval_text=HELD_OUT)
    record = policy.record()
    assert record["eval_text"] is None and record["eval_text_sha256"] == policy.eval_text_sha256()
    assert record["text"] is None and "text_sha256" in record
    assert DataPolicy.from_record(record, policy.text, full_eval_text=HELD_OUT) == policy
    with pytest.raises(SpecError, match="pass the same --eval-text file"):
        DataPolicy.from_record(record, policy.text)
    with pytest.raises(SpecError, match="pass the same --eval-text file"):
        DataPolicy.from_record(record, policy.text, full_eval_text=HELD_OUT + "!")


def test_spec_carries_eval_text_into_its_policy_and_round_trips():
    spec = parse_spec({**TINY, "eval_text": HELD_OUT[:5000]})
    assert spec.data_policy.eval_text == HELD_OUT[:5000]
    assert parse_spec(spec.model_dump_json()) == spec
    assert SearchSpec.model_json_schema()["properties"]["eval_text"]["anyOf"][0]["type"] == "string"


def test_the_study_of_a_search_with_eval_text_is_its_own():
    from search.study import base_study_name

    plain = parse_spec(TINY)
    assert base_study_name(plain) != base_study_name(parse_spec({**TINY, "eval_text": HELD_OUT[:5000]}))


# ---- CLI: one line, exit 2 -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def llama_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("llama") / "config.json"
    path.write_text(json.dumps(tiny_config("llama")))
    return path


def _refused(capsys, argv: list[str], *expected: str) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert all(words in lines[0] for words in expected), lines[0]


def _bad_files(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("caf\u00e9 ok".encode("latin-1"))
    (tmp_path / "blank.txt").write_text(" \n\n ")
    (tmp_path / "short.txt").write_text("a short text. " * 20)  # 280 byte tokens
    with open(tmp_path / "huge.txt", "wb") as f:  # sparse: refused by its size before it is read
        f.truncate(MAX_TEXT_FILE_BYTES + 1)
    return [("missing.txt", ["evaluation text file", "does not exist"]),
            ("latin1.txt", ["is not UTF-8 text", "byte 0xe9 at byte offset 3"]),
            ("blank.txt", ["evaluation text file", "is empty"]),
            ("huge.txt", ["16.0 MiB", "more than the 16 MiB limit"])]


def test_evaluate_refuses_unusable_eval_text_with_one_line(capsys, tmp_path, llama_config):
    base = ["evaluate", "--model", str(llama_config), "--bits", "4", "--seq-len", "32", "--samples", "4"]
    for name, words in _bad_files(tmp_path):
        _refused(capsys, [*base, "--eval-text", str(tmp_path / name)], *words)
    _refused(capsys, [*base, "--samples", "16", "--eval-text", str(tmp_path / "short.txt")],
             "evaluation text has only 280 tokens", "16 samples x 32 tokens need 512")


def test_evaluate_scores_on_the_eval_text_and_records_it(capsys, tmp_path, llama_config):
    (tmp_path / "held.txt").write_text(HELD_OUT[:2000])
    assert main(["evaluate", "--model", str(llama_config), "--bits", "4", "--seq-len", "32", "--samples", "4",
                 "--eval-text", str(tmp_path / "held.txt"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["quality"]) == {"kl", "perplexity", "top1"} and 0 <= out["quality"]["top1"] <= 1
    assert out["data"]["eval_text"] == HELD_OUT[:2000]


def test_search_refuses_unusable_eval_text_with_one_line(capsys, tmp_path, llama_config):
    base = ["search", "--model", str(llama_config), "--workload", "prefill:32", "--max-memory", "1GB",
            "--trials", "2", "--storage", f"sqlite:///{tmp_path / 's.db'}"]
    for name, words in _bad_files(tmp_path):
        _refused(capsys, [*base, "--eval-text", str(tmp_path / name)], *words)
    # too few bytes for 16 rows of 128 tokens: refused by the spec itself
    _refused(capsys, [*base, "--eval-text", str(tmp_path / "short.txt")], "eval_text has 280 bytes", "2,016")
    # enough bytes for the spec's bound, too few tokens: counted with the model's tokenizer, before any trial
    (tmp_path / "almost.txt").write_text("x" * 2040)
    _refused(capsys, [*base, "--eval-text", str(tmp_path / "almost.txt")],
             "evaluation text has only 2,040 tokens", "need 2,048")


# ---- API: 4xx naming eval_text ---------------------------------------------------------------------------
@pytest.fixture
def client(tmp_path):
    """An app that stores jobs but sends them nowhere (no broker), as tests/service's client."""
    from fastapi.testclient import TestClient

    from service.main import create_app
    from tests.service.conftest import make_settings

    with TestClient(create_app(make_settings(tmp_path))) as c:
        yield c


def _post_raw(client, body: dict):
    return client.post("/search", content=json.dumps(body, ensure_ascii=True),
                       headers={"content-type": "application/json"})


@pytest.mark.parametrize("eval_text, status, words", [
    ("  \n", 422, "body.eval_text: eval_text is empty"),
    ("held \ud800 out " * 500, 422, "body.eval_text: eval_text has a lone surrogate at character 5"),
    ("too short", 422, "body.eval_text: eval_text has 9 bytes"),
    ("word " * 1000, 422, "body.eval_text: the evaluation text has only 1,000 tokens"),  # minilm's word pieces
    ("x" * 200_001, 400, "eval_text: 200001 characters is more than this server allows"),
])
def test_the_api_refuses_unusable_eval_text_naming_it(client, eval_text, status, words):
    r = _post_raw(client, {**TINY, "eval_text": eval_text})
    assert r.status_code == status, r.text
    assert r.json()["detail"].startswith(words), r.json()["detail"]


def test_the_api_accepts_eval_text_and_the_schema_has_it(client):
    r = client.post("/search", json={**TINY, "eval_text": HELD_OUT[:20000]})
    assert r.status_code == 202, r.text
    assert client.get(r.json()["links"]["self"]).json()["spec"]["eval_text"] == HELD_OUT[:20000]
    assert "eval_text" in client.get("/openapi.json").json()["components"]["schemas"]["SearchSpec"]["properties"]


def test_front_table_shows_top1_and_candidates_scored_before_it_existed():
    from search.cli.front_table import front_table

    recipe = CompressionConfig.uniform(bits=4).model_dump(mode="json")
    row = {"latency_ms": 1.0, "memory_bytes": 1000, "recipe": recipe}
    table = front_table([{**row, "quality": {"kl": 0.01, "perplexity": 9.0}},  # a resumed study's older trial
                         {**row, "quality": {"kl": 0.02, "perplexity": 9.5, "top1": 0.875}},
                         {**row, "quality": {"kl": 0.03, "perplexity": None, "top1": 0.5}}], "kl")
    head, old, new, broken = table.splitlines()
    assert head.split()[:4] == ["#", "kl", "perplexity", "top1"]
    assert old.split()[3] == "-" and new.split()[3] == "0.8750" and broken.split()[2] == "-"
