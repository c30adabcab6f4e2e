"""Recovery inside the search: the "recover" evaluation stage and which candidates get it."""

import json
from types import SimpleNamespace

import pytest

from search.evaluation import evaluate_task as evaluate
from search.executor import EvalTask
from search.recipe import CompressionConfig
from search.recovery.in_search import expected_gain, worth_recovering
from search.spec import SearchSpec
from tests.conftest import tiny_config

METRIC = ("kl", "min")
OBJECTIVES = ("quality", "latency", "memory")


def test_recover_stage_reports_before_and_after(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(tiny_config("llama")))
    spec = SearchSpec(model=str(config), workload="decode:64", recover="5steps", calib_samples=4, seq_len=32)
    task = EvalTask(study="s", trial=3, stage="recover", spec=spec,
                    recipe=CompressionConfig.uniform(bits=2, group_size=32))
    result = evaluate(task)
    assert result.key == "s:3:recover" and result.extra["stage"] == "recover"
    before = result.extra["quality_before"]
    assert set(before) == set(result.quality) == {"kl", "perplexity", "top1"}
    assert result.extra["recovery"]["steps"] == 5
    assert result.quality["kl"] <= before["kl"]
    assert result.memory_bytes > 0


def _cand(kl, latency, memory, before=None):
    return SimpleNamespace(quality={"kl": kl}, latency_ms=latency, memory_bytes=memory,
                           quality_before_recovery=None if before is None else {"kl": before})


def test_every_feasible_candidate_is_recovered_until_gains_are_known():
    front = [_cand(0.01, 10, 100)]
    assert expected_gain([], METRIC) == float("inf")
    # far worse than a faster, smaller front member, yet recovered: its gain is unknown
    assert worth_recovering({"kl": 5.0}, 20, 200, True, front, front, OBJECTIVES, METRIC)
    assert not worth_recovering({"kl": 0.001}, 1, 1, False, front, front, OBJECTIVES, METRIC)  # infeasible


def test_known_gains_skip_hopeless_candidates():
    history = [_cand(0.10, 5, 50, before=0.30), _cand(0.20, 6, 60, before=0.25)]  # gains 0.2, 0.05
    front = [_cand(0.05, 10, 100)]
    assert expected_gain(history, METRIC) == pytest.approx(1.5 * 0.2)
    assert worth_recovering({"kl": 0.3}, 20, 200, True, front, history, OBJECTIVES, METRIC)  # 0.3-0.3 < 0.05
    assert not worth_recovering({"kl": 0.5}, 20, 200, True, front, history, OBJECTIVES, METRIC)
    assert worth_recovering({"kl": 0.5}, 5, 200, True, front, history, OBJECTIVES, METRIC)  # faster than it


def test_export_writes_the_recovered_weights(tiny_llama, tmp_path):
    import torch

    from search.compress import apply
    from search.compress.export import load_compressed
    from search.data_policy import DataPolicy
    from search.evaluation import build
    from search.export_candidate import export

    recipe = CompressionConfig.uniform(bits=2, group_size=32)
    model = build(tiny_llama, recipe, DataPolicy(eval_rows=4, calib_rows=4, seq_len=32),
                  recovery={"kept": "recovered", "steps": 4})
    plain = apply(tiny_llama.model, recipe)
    out = export(tiny_llama, recipe, tmp_path / "out", compressed=model)
    reloaded = load_compressed(out).model
    ids = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(reloaded(ids).logits, model(ids).logits)
        assert not torch.equal(reloaded(ids).logits, plain(ids).logits)
