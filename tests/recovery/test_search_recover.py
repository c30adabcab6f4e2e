"""A search with spec.recover: recovered candidates carry both metrics and the front uses the recovered ones."""

import json

from search.engine import run_search
from search.executors.local import LocalExecutor
from search.spec import parse_spec
from tests.conftest import tiny_config


def test_search_with_recovery_records_before_and_after(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICEFIT_RESULTS", str(tmp_path / "results"))
    config = tmp_path / "config.json"
    config.write_text(json.dumps(tiny_config("llama")))
    spec = parse_spec({"model": str(config), "workload": "decode:64", "trials": 3, "recover": "2steps",
                       "budget": {"max_latency": None, "max_memory": None}, "calib_samples": 4, "seq_len": 32,
                       "space": {"granularity": "model"}, "storage": f"sqlite:///{tmp_path / 's.db'}"})
    result = run_search(spec, LocalExecutor(workers=1), save=False, seed_trials=False)
    recovered = [c for c in result.front if c.quality_before_recovery is not None]
    assert recovered, "the first feasible candidates are always recovered"
    for c in recovered:
        assert c.recovery["steps"] == 2
        assert c.quality["kl"] <= c.quality_before_recovery["kl"]  # keep_best: never worse
        entry = c.to_json()
        assert entry["quality_before_recovery"] == c.quality_before_recovery and entry["recovery"]["budget"] == "2steps"
