"""search-cli evaluate/generate with a .gguf model, and search.generate from the Python API."""

from __future__ import annotations

import json

import llama_cpp  # noqa: F401 - a missing runtime must fail the suite, never skip it
import pytest

import search
from search.cli.main import main
from search.data_policy import DataPolicy
from search.models import load_model
from search.runtimes.gguf_writer import write_gguf
from tests.runtimes.tiny_models import tiny_causal


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    """A tiny Llama saved as a model directory (the GGUF's source reference), and its F32 GGUF."""
    root = tmp_path_factory.mktemp("llama")
    tiny_causal("llama").save_pretrained(root / "model")
    loaded = load_model(str(root / "model"))
    gguf_path = write_gguf(loaded, None, None, root / "model-f32.gguf", dense_type="F32",
                           policy=DataPolicy(eval_rows=3, seq_len=48))
    return root / "model", gguf_path


def _run(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_evaluate_gguf_json_has_the_evaluator_keys(capsys, llama_dir):
    source, gguf_path = llama_dir
    code, out, err = _run(capsys, ["evaluate", "--model", str(gguf_path), "--json"])
    assert code == 0, err
    result = json.loads(out)
    assert set(result["quality"]) == {"kl", "perplexity", "top1"}
    assert result["quality"]["kl"] < 1e-4  # F32 weights: llama.cpp and torch agree
    assert result["source"] == str(source) and result["runtime"] == "llama.cpp"
    assert result["data"]["eval_rows"] == 3  # the recorded policy
    assert result["file_bytes"] >= result["memory_bytes"] > 0


def test_generate_gguf_continues_like_torch(capsys, llama_dir):
    source, gguf_path = llama_dir
    cpp = search.generate(str(gguf_path), "The model says", max_new_tokens=12, threads=2)
    ref = search.generate(str(source), "The model says", max_new_tokens=12, threads=2)
    assert (cpp.runtime, ref.runtime) == ("llama.cpp", "torch")
    assert cpp.prompt_ids == ref.prompt_ids == list(b"The model says")
    assert cpp.new_ids == ref.new_ids  # greedy decoding of the same F32 weights
    code, out, err = _run(capsys, ["generate", "--model", str(gguf_path), "--prompt", "The model says",
                                   "--max-new-tokens", "12", "--threads", "2"])
    assert code == 0, err
    assert out.rstrip("\n") == "The model says" + cpp.text
    assert "tokens/s" in err and "llama.cpp" in err


def test_bad_gguf_requests_are_one_line_errors(capsys, tmp_path, llama_dir):
    _, gguf_path = llama_dir
    for argv, expected in (
            (["evaluate", "--model", str(tmp_path / "none.gguf")], "does not exist"),
            (["evaluate", "--model", str(gguf_path), "--bits", "4"], "drop --bits"),
            (["generate", "--model", str(gguf_path), "--prompt", "x", "--max-new-tokens", "0"], "at least 1"),
            (["generate", "--model", str(tmp_path / "none.gguf"), "--prompt", "x"], "does not exist")):
        code, _, err = _run(capsys, argv)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and expected in lines[0], (argv, err)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf at all")
    code, _, err = _run(capsys, ["evaluate", "--model", str(bad)])
    assert code == 2 and "not a readable GGUF" in err
