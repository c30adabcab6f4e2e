"""search-cli predict / profile: output, JSON keys, and one-line errors with exit code 2."""

import json
from pathlib import Path

import pytest

from search.cli.main import main
from tests.conftest import tiny_config


@pytest.fixture
def llama_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(tiny_config("llama")))
    return path


def test_predict_from_a_config_without_weights(llama_config, capsys):
    assert main(["predict", "--device", "rpi5", "--model", str(llama_config), "--bits", "4",
                 "--workload", "decode:128"]) == 0
    out = capsys.readouterr().out
    assert "tokens/s" in out and "memory" in out and "model.layers.0.mlp.down_proj" in out and "lm_head" in out


def test_predict_json(llama_config, capsys):
    assert main(["predict", "--device", "jetson-orin-nano", "--model", str(llama_config), "--bits", "4",
                 "--rank", "0.5", "--workload", "prefill:64", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"latency_ms", "tokens_per_s", "memory_bytes", "layers"} <= set(data)
    assert data["tokens_per_s"] == pytest.approx(64 * 1000 / data["latency_ms"])
    assert data["layers"][0]["bound"] in ("compute", "memory", "overhead")


def test_predict_encoder_json_has_null_tokens_per_s(tmp_path, capsys):
    path = tmp_path / "bert.json"
    path.write_text(json.dumps(tiny_config("bert")))
    assert main(["predict", "--device", "host", "--model", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["workload"] == "encode:128" and data["tokens_per_s"] is None


def test_predict_with_a_recipe_file(llama_config, tmp_path, capsys):
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"layers": {"_default": {"bits": 4}, "re:mlp": {"bits": 2}},
                                  "keep_blocks": [0, 3]}))
    assert main(["predict", "--device", "apple-m4", "--model", str(llama_config), "--recipe", str(recipe),
                 "--workload", "decode:32", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {op["block"] for op in data["layers"] if op["block"] is not None} == {0, 3}


@pytest.mark.parametrize("args,needle", [
    (["--device", "rpi9"], "unknown device 'rpi9'"),
    (["--device", "rpi5", "--workload", "decode:abc"], "cannot read workload 'decode:abc'"),
    (["--device", "rpi5", "--bits", "7"], "bits 7"),
])
def test_predict_bad_input_one_line_exit_2(llama_config, capsys, args, needle):
    assert main(["predict", "--model", str(llama_config), *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_predict_unsupported_architecture_exit_2(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "mamba", "hidden_size": 64}))
    assert main(["predict", "--device", "rpi5", "--model", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unsupported architecture 'mamba'" in err and err.count("\n") == 1


def test_decode_on_an_encoder_is_refused_when_measuring(tmp_path, capsys):
    path = tmp_path / "bert.json"
    path.write_text(json.dumps(tiny_config("bert")))
    assert main(["predict", "--device", "host", "--model", str(path), "--workload", "decode:16", "--measure"]) == 2
    assert "causal" in capsys.readouterr().err


def test_predict_measure_times_the_compressed_model(llama_config, capsys):
    assert main(["predict", "--device", "host", "--model", str(llama_config), "--bits", "4",
                 "--workload", "decode:16", "--measure", "--repeats", "3", "--warmup", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    m = data["measured"]
    assert len(m["samples_ms"]) == 3 and m["median_ms"] > 0 and m["threads"] == 1
    assert data["latency_ms"] == m["median_ms"] and data["predicted_ms"] > 0


def test_profile_list(capsys):
    assert main(["profile", "--list"]) == 0
    out = capsys.readouterr().out
    assert "rpi5" in out and "host" in out and "h100-sxm" in out
