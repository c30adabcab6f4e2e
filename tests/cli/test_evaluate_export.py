"""search-cli evaluate / export: bad input is one line and exit code 2; --json has the documented keys."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from search.cli.main import main
from tests.conftest import tiny_config

CLI = Path(sys.executable).parent / "search-cli"


@pytest.fixture(scope="module")
def llama_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("llama") / "config.json"
    path.write_text(json.dumps(tiny_config("llama")))
    return path


def _refused(capsys, argv: list[str], expected: str) -> str:
    """Run the CLI in-process; it must exit 2 with exactly one stderr line containing ``expected``."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors exit directly
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], err
    assert "Traceback" not in err
    return lines[0]


def _recipe_file(tmp_path: Path, recipe: dict) -> str:
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    return str(path)


@pytest.mark.parametrize("command", ["evaluate", "export"])
def test_bad_recipes_are_refused_with_one_line(capsys, tmp_path, command):
    out = ["--out", str(tmp_path / "out")] if command == "export" else []
    unknown = _recipe_file(tmp_path, {"layers": {"encoder.layer.0.nope": {"bits": 4}}})
    _refused(capsys, [command, "--recipe", unknown, *out], "'encoder.layer.0.nope', which the model does not have")
    pattern = _recipe_file(tmp_path, {"layers": {"re:decoder\\.": {"bits": 4}}})
    _refused(capsys, [command, "--recipe", pattern, *out], "pattern 're:decoder\\\\.' matches no layer")
    _refused(capsys, [command, "--rank", "1000", *out], "rank 1000 for layer")
    _refused(capsys, [command, "--sparsity", "1", *out], "sparsity 1.0 must be in [0, 1)")
    _refused(capsys, [command, "--bits", "7", *out], "bits 7 is not supported; use one of 16, 8, 6, 5, 4, 3, 2")
    assert not (tmp_path / "out").exists()


def test_bad_models_and_files_are_refused_with_one_line(capsys, tmp_path, llama_config):
    _refused(capsys, ["evaluate", "--model", str(tmp_path / "no-such-model")], "does not exist")
    mamba = tmp_path / "mamba"
    mamba.mkdir()
    (mamba / "config.json").write_text(json.dumps({"model_type": "mamba", "hidden_size": 64}))
    line = _refused(capsys, ["evaluate", "--model", str(mamba)], "unsupported architecture 'mamba'")
    assert "llama" in line and "bert" in line  # names what is supported
    _refused(capsys, ["export", "--model", str(mamba), "--out", str(tmp_path / "o")], "unsupported architecture")
    _refused(capsys, ["evaluate", "--model", str(llama_config), "--calibration", str(tmp_path / "none.txt")],
             "does not exist")
    _refused(capsys, ["evaluate", "--model", str(llama_config), "--seq-len", "1000"],
             "exceeds the model's maximum of 256 positions")
    _refused(capsys, ["evaluate", "--bits", "four"], "invalid int value")


def test_export_from_a_study_that_does_not_exist(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICEFIT_RESULTS", str(tmp_path / "results"))
    _refused(capsys, ["export", "no-such-study", "--candidate", "0", "--out", str(tmp_path / "o")],
             "no-such-study")
    _refused(capsys, ["export", "some-study", "--out", str(tmp_path / "o")], "--candidate K")
    _refused(capsys, ["export", "some-study", "--candidate", "0", "--bits", "4", "--out", str(tmp_path / "o")],
             "drop --bits")


def test_real_subprocess_refuses_bad_bits_without_traceback():
    proc = subprocess.run([str(CLI), "evaluate", "--bits", "7"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: invalid recipe: layers._default.bits: bits 7 is not supported; use one of 16, 8, 6, 5, 4, 3, 2"]
    assert proc.stdout == ""


def test_evaluate_json_schema_for_a_causal_lm(capsys, llama_config):
    code = main(["evaluate", "--model", str(llama_config), "--bits", "4", "--group-size", "16",
                 "--samples", "4", "--seq-len", "32", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"quality", "memory_bytes", "recipe", "data"}
    assert data["data"]["eval_rows"] == 4 and data["data"]["seq_len"] == 32
    assert set(data["quality"]) == {"kl", "perplexity", "top1"} and data["quality"]["kl"] > 0
    assert isinstance(data["memory_bytes"], int) and data["memory_bytes"] > 0
    assert data["recipe"]["layers"]["_default"]["bits"] == 4


def test_evaluate_json_for_an_encoder(capsys):
    assert main(["evaluate", "--model", "demo:minilm", "--bits", "8", "--samples", "2", "--seq-len", "32",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["quality"]) == {"cosine"} and 0.99 < data["quality"]["cosine"] <= 1.0 + 1e-6


def test_evaluate_prints_a_readable_summary(capsys, llama_config):
    assert main(["evaluate", "--model", str(llama_config), "--bits", "8", "--group-size", "16",
                 "--samples", "2", "--seq-len", "32"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["model", "recipe", "quality", "memory"]
    assert lines[2].split()[1:5:2] == ["kl", "perplexity"] and "8b/g16" in lines[1]


def test_export_writes_a_model_that_loads_back_with_the_same_outputs(capsys, tmp_path, llama_config):
    import torch

    import search
    from search.data import calibration_batches
    from search.data_policy import DataPolicy
    from search.evaluation import calibration_rows

    out = tmp_path / "exported"
    assert main(["export", "--model", str(llama_config), "--bits", "4", "--group-size", "16", "--format", "devicefit",
                 "--samples", "4", "--seq-len", "32", "--out", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["out"] == str(out) and info["disk_bytes"] > 0
    again = search.load_compressed(out)  # through the public API
    loaded = search.load_model(str(llama_config))
    rebuilt = search.apply(loaded.model, search.parse_recipe(info["recipe"]), calibration=calibration_rows(loaded, DataPolicy(calib_rows=4, seq_len=32)))
    ids = calibration_batches(loaded.tokenizer, split="eval", n=2, seq_len=32)
    with torch.no_grad():
        assert torch.equal(again.model(ids).logits, rebuilt(ids).logits)
    _refused(capsys, ["export", "--model", str(llama_config), "--out", str(out)], "is not empty")
    # evaluating an export scores it against the model it was made from, like evaluating the recipe
    sizes = ["--samples", "4", "--seq-len", "32", "--json"]
    assert main(["evaluate", "--model", str(out), *sizes]) == 0
    of_export = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "--model", str(llama_config), "--bits", "4", "--group-size", "16", *sizes]) == 0
    of_recipe = json.loads(capsys.readouterr().out)
    assert of_export["quality"]["kl"] == pytest.approx(of_recipe["quality"]["kl"], rel=1e-6)
    assert of_export["quality"]["kl"] > 0 and of_export["memory_bytes"] == of_recipe["memory_bytes"]
    _refused(capsys, ["evaluate", "--model", str(out), "--bits", "8"], "already compressed by its recipe.json")


def test_export_a_candidate_of_a_saved_search(capsys, tmp_path, monkeypatch, llama_config):
    from search.recipe import CompressionConfig
    from search.results import write_front
    from search.spec import SearchSpec

    monkeypatch.setenv("DEVICEFIT_RESULTS", str(tmp_path / "results"))
    spec = SearchSpec(model=str(llama_config), workload="decode:64", calib_samples=4, seq_len=32)
    recipes = [CompressionConfig.uniform(bits=8, group_size=16), CompressionConfig.uniform(bits=3, group_size=16)]
    write_front("saved", {"study": "saved", "spec": spec.model_dump(mode="json"),
                          "front": [{"recipe": r.model_dump(mode="json"), "quality": {"kl": 0.1}} for r in recipes]})
    out = tmp_path / "candidate1"
    assert main(["export", "saved", "--candidate", "1", "--format", "devicefit", "--out", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model"] == str(llama_config) and info["recipe"]["layers"]["_default"]["bits"] == 3
    assert json.loads((out / "recipe.json").read_text())["layers"]["_default"]["bits"] == 3
    _refused(capsys, ["export", "saved", "--candidate", "5", "--out", str(tmp_path / "o")], "candidate 5")
