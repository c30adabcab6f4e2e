"""search-cli export --format: the default follows the device's runtime; what a format cannot express is
one line and exit code 2."""

import json
from pathlib import Path

import pytest

from search.cli.export_format import device_format, filetype_format
from search.cli.main import main
from search.hw_profiles.profile import list_profiles, load_profile
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def llama_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("llama") / "config.json"
    path.write_text(json.dumps(tiny_config("llama")))
    return path


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_plain_model_export_defaults_to_hf(capsys, tmp_path, llama_config):
    out = tmp_path / "hf"
    code, stdout, err = _run(capsys, ["export", "--model", str(llama_config), "--bits", "4", "--group-size", "32",
                                      "--out", str(out), "--json"])
    assert code == 0, err
    report = json.loads(stdout)
    assert report["format"] == "hf"
    config = json.loads((out / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "compressed-tensors"
    assert (out / "data_policy.json").is_file()  # how the candidate was scored, beside it
    assert report["disk_bytes"] == sum(f.stat().st_size for f in out.rglob("*") if f.is_file())


def test_devicefit_format_on_request(capsys, tmp_path, llama_config):
    out = tmp_path / "df"
    code, stdout, err = _run(capsys, ["export", "--model", str(llama_config), "--bits", "4", "--format", "devicefit",
                                      "--out", str(out)])
    assert code == 0, err
    assert (out / "devicefit.json").is_file() and "search.load_compressed" in stdout


@pytest.mark.parametrize("argv,expected", [
    (["--bits", "4", "--format", "gguf"], "--format gguf cannot express layer"),
    (["--heads", "0.5", "--format", "hf", "--model", "bert"], "--format hf cannot express this candidate"),
    (["--format", "onnx"], "unknown --format 'onnx': use gguf, hf, devicefit, or a runtime file type"),
])
def test_a_format_that_cannot_express_the_recipe_is_one_line(capsys, tmp_path, llama_config, argv, expected):
    if "bert" in argv:
        bert = tmp_path / "bert.json"
        bert.write_text(json.dumps(tiny_config("bert")))
        argv = [a if a != "bert" else str(bert) for a in argv]
    else:
        argv = [*argv, "--model", str(llama_config)]
    code, _, err = _run(capsys, ["export", *argv, "--out", str(tmp_path / "out")])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and expected in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_default_format_is_the_runtime_of_the_device():
    runtimes = {name: load_profile(name).runtime for name in list_profiles()}
    llama_cpp = [n for n, r in runtimes.items() if "llama.cpp" in r]
    others = [n for n, r in runtimes.items() if "llama.cpp" not in r]
    assert llama_cpp and others
    assert {device_format(n) for n in llama_cpp} == {"gguf"}
    assert {device_format(n) for n in others} == {"hf"}
    assert device_format(None) == "hf"
    assert (filetype_format("Q4_K_M"), filetype_format("q4f16_1")) == ("gguf", "hf")


def test_a_study_candidate_defaults_to_its_device_runtime(capsys, tmp_path, monkeypatch, llama_config):
    from search.recipe import CompressionConfig
    from search.results import write_front
    from search.spec import SearchSpec

    monkeypatch.setenv("DEVICEFIT_RESULTS", str(tmp_path / "results"))
    recipe = CompressionConfig.uniform(bits=8, group_size=16)
    for device in ("rpi5", "host"):  # llama.cpp, and PyTorch
        spec = SearchSpec(model=str(llama_config), device=device, workload="decode:64", calib_samples=4, seq_len=32)
        write_front(device, {"study": device, "spec": spec.model_dump(mode="json"),
                             "front": [{"recipe": recipe.model_dump(mode="json"), "quality": {"kl": 0.1}}]})
    code, _, err = _run(capsys, ["export", "rpi5", "--candidate", "0", "--out", str(tmp_path / "gguf")])
    assert code == 2 and "--format gguf cannot express layer" in err and len(err.strip().splitlines()) == 1
    code, stdout, err = _run(capsys, ["export", "host", "--candidate", "0", "--out", str(tmp_path / "hf"), "--json"])
    assert code == 0, err
    assert json.loads(stdout)["format"] == "hf" and (tmp_path / "hf" / "devicefit_export.json").is_file()
    code, _, err = _run(capsys, ["export", "host", "--candidate", "0", "--format", "Q8_0", "--out", str(tmp_path / "x")])
    assert code == 2 and "drop --format" in err


@pytest.mark.parametrize("recipe,rel", [(["--width", "0.5", "--heads", "0.5"], 1e-6),  # the same bf16 model
                                        (["--bits", "4", "--group-size", "16"], 1e-2)])  # fp32 vs bf16 compute
def test_an_hf_export_evaluated_from_disk_reproduces_the_scored_quality(capsys, tmp_path, llama_config, recipe, rel):
    sizes = ["--samples", "4", "--seq-len", "32", "--json"]
    out = tmp_path / "hf"
    code, _, err = _run(capsys, ["export", "--model", str(llama_config), *recipe, *sizes, "--format", "hf",
                                 "--out", str(out)])
    assert code == 0, err
    code, of_export, err = _run(capsys, ["evaluate", "--model", str(out), *sizes])  # scored as transformers loads it
    assert code == 0, err
    code, of_recipe, err = _run(capsys, ["evaluate", "--model", str(llama_config), *recipe, *sizes])
    assert code == 0, err
    of_export, of_recipe = json.loads(of_export), json.loads(of_recipe)
    assert of_export["quality"]["kl"] == pytest.approx(of_recipe["quality"]["kl"], rel=rel)
    assert of_export["quality"]["kl"] > 0 and of_export["memory_bytes"] == of_recipe["memory_bytes"]
