"""search-cli search / show: bad input is one line and exit 2; a real (small) search end to end."""

import json

import pytest

from search.cli.main import main
from search.results import find_candidate, load_front


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, needle", [
    (["--max-latency", "200"], "has no unit"),
    (["--device", "nosuch"], "nosuch"),
    (["--model", "/nope"], "/nope"),
    (["search", "--time", "10"], "has no unit"),
    (["show", "no-such-study"], "no saved front"),
    (["--storage", "nosuch://db"], "cannot open storage"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, results, argv, needle):
    code, out, err = _run(capsys, *argv)
    assert code == 2 and needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unreachable_budget_names_it_and_the_closest_candidate(capsys, tiny_ref, results):
    code, _, err = _run(capsys, "--model", tiny_ref, "--workload", "prefill:128", "--max-latency", "1us")
    assert code == 2 and "max_latency 1us" in err and "closest candidate" in err
    assert len(err.strip().splitlines()) == 1


def test_search_json_then_show(capsys, tiny_spec, tmp_path):
    spec = tiny_spec(trials=8, storage=None, space={"granularity": "model"})  # real evaluate(): apply, KL
    path = tmp_path / "spec.json"
    path.write_text(spec.model_dump_json())
    code, out, err = _run(capsys, "--spec", str(path), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["front"] and set(data) >= {"front", "study", "results_path"}
    for c in data["front"]:
        assert set(c) >= {"quality", "latency_ms", "memory_bytes", "recipe"}
        assert c["latency_ms"] <= spec.budget.latency_ms and c["quality"]["kl"] >= 0
    assert "search" in err  # the progress bar went to stderr
    assert load_front(data["study"])["front"] == data["front"]
    spec_back, recipe, metrics = find_candidate(data["study"], 0)
    assert spec_back == spec and recipe.model_dump(mode="json") == data["front"][0]["recipe"]
    assert metrics["latency_ms"] == data["front"][0]["latency_ms"]

    code, out, _ = _run(capsys, "show", data["study"])
    assert code == 0 and data["study"] in out and "latency" in out
    assert len([line for line in out.splitlines() if line.strip()[:1].isdigit()]) == len(data["front"])


def test_flags_fill_the_one_spec():
    import argparse

    from search.cli.cmd_search import register, spec_from_args

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["search", "--device", "host", "--max-memory", "64MB", "--measure", "--trials", "5"])
    spec = spec_from_args(args)
    assert (spec.device, spec.measure, spec.trials) == ("host", True, 5)
    assert spec.budget.max_memory == "64MB" and spec.budget.max_latency is None
