"""Scored is shipped: every front member, exported and re-scored from disk, gives the quality the search
recorded — for a search whose candidates use data-aware transforms (width pruning, Wanda sparsity)."""

import pytest

from search.data_policy import DataPolicy
from search.engine import export_candidate, run_search
from search.executors.local import LocalExecutor
from search.export_candidate import evaluate_export


def test_exports_reproduce_the_recorded_quality(tiny_spec, tmp_path):
    # the host runs devicefit's own PyTorch layers: Wanda sparsity and width pruning are both proposed there
    spec = tiny_spec(trials=10, calib_samples=4, calib_rows=3, seq_len=32, device="host", budget={},
                     space={"axes": ["bits", "sparsity", "width"], "granularity": "model", "bits": [16, 8, 4],
                            "sparsity": [0.0, 0.5], "sparsity_patterns": ["unstructured"],
                            "sparsity_score": "wanda", "width": [1.0, 0.75, 0.5]})
    result = run_search(spec, LocalExecutor(), seed_trials=False, staged=False, save=False)
    assert result.front, "the search found no feasible candidate"
    data_aware = [c for c in result.front
                  if c.recipe.width.mlp < 1 or any(s.sparsity > 0 for s in c.recipe.layers.values())]
    assert data_aware, "no front member used a data-aware transform: the test would prove nothing"
    for c in result.front:
        assert c.data == spec.data_policy.record()  # the policy is recorded with the trial
        policy = DataPolicy.from_record(c.data)
        out = export_candidate(spec.model, c.recipe, tmp_path / f"trial{c.trial}", policy=policy)
        again = evaluate_export(str(out))  # the export's own record says which rows to score on
        assert again.quality["kl"] == pytest.approx(c.quality["kl"], rel=1e-6, abs=1e-9), c.recipe.summary()
        assert again.memory_bytes == c.memory_bytes
