"""--method gptq / --act-order on evaluate, export and predict: the recipe they mean, and one-line refusals."""

import json
from pathlib import Path

import pytest

from search.cli.main import main
from tests.cli.test_evaluate_export import _recipe_file, _refused
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def llama_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("llama") / "config.json"
    path.write_text(json.dumps(tiny_config("llama")))
    return path


def _evaluated(capsys, argv: list[str]) -> dict:
    assert main(["evaluate", *argv, "--samples", "2", "--seq-len", "32", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_method_gptq_rounds_every_quantized_layer(capsys, llama_config):
    out = _evaluated(capsys, ["--model", str(llama_config), "--bits", "3", "--group-size", "16",
                              "--method", "gptq", "--act-order"])
    assert out["recipe"]["layers"]["_default"]["method"] == "gptq"
    assert out["recipe"]["layers"]["_default"]["act_order"] is True
    rtn = _evaluated(capsys, ["--model", str(llama_config), "--bits", "3", "--group-size", "16"])
    assert out["memory_bytes"] == rtn["memory_bytes"]  # the same storage, other codes
    assert out["quality"]["kl"] != rtn["quality"]["kl"]


def test_method_applies_to_a_file_type_but_not_to_its_float_tensors(capsys, llama_config):
    out = _evaluated(capsys, ["--model", str(llama_config), "--format", "Q8_0", "--method", "gptq"])
    quantized = [s for s in out["recipe"]["layers"].values() if s["bits"] < 16]
    assert quantized and all(s["method"] == "gptq" for s in quantized)
    assert out["recipe"]["embedding"]["method"] == "rtn"


@pytest.mark.parametrize("argv, message", [
    (["--bits", "4", "--act-order"], "add --method gptq"),
    (["--method", "gptq", "--recipe", "RECIPE"], "not both"),
])
def test_bad_method_options_are_one_line(capsys, tmp_path, llama_config, argv, message):
    argv = [_recipe_file(tmp_path, {}) if a == "RECIPE" else a for a in argv]
    _refused(capsys, ["evaluate", "--model", str(llama_config), *argv], message)


def test_a_timing_of_a_gptq_recipe_needs_no_calibration(capsys, llama_config):
    code = main(["predict", "--device", "host", "--model", str(llama_config), "--bits", "4", "--group-size", "16",
                 "--method", "gptq", "--workload", "prefill:16", "--measure", "--repeats", "2", "--warmup", "1",
                 "--json"])
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["measured"]["median_ms"] > 0
