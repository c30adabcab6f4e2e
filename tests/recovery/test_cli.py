"""search-cli evaluate --recover and search-cli demo."""

import json

from search.cli.main import main
from tests.conftest import tiny_config


def _config(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(tiny_config("llama")))
    return str(path)


def test_evaluate_with_recovery_reports_before_and_after(tmp_path, capsys):
    code = main(["evaluate", "--model", _config(tmp_path), "--bits", "2", "--group-size", "32",
                 "--samples", "4", "--seq-len", "32", "--recover", "3steps", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["quality"]) == set(out["quality_before_recovery"]) == {"kl", "perplexity", "top1"}
    assert out["recovery"]["steps"] == 3
    # keep_best: the reported model is never worse than before recovery
    assert out["quality"]["kl"] <= out["quality_before_recovery"]["kl"]


def test_bad_recovery_budget_is_one_line_exit_2(tmp_path, capsys):
    code = main(["evaluate", "--model", _config(tmp_path), "--bits", "4", "--recover", "lots"])
    err = capsys.readouterr().err
    assert code == 2 and "recovery budget" in err and len(err.strip().splitlines()) == 1


def test_demo_list_names_both_demos(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICEFIT_CACHE", str(tmp_path))
    assert main(["demo", "list"]) == 0
    out = capsys.readouterr().out
    assert "demo:minilm" in out and "demo:tinylm\tnot built" in out


def test_demo_build_unknown_name_is_one_line(capsys):
    assert main(["demo", "build", "gpt5"]) == 2
    assert "unknown demo" in capsys.readouterr().err
