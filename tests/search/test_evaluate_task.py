import pytest

from search.evaluation import evaluate_task as evaluate
from search.evaluation import proxy_rows
from search.executor import EvalTask
from search.recipe import CompressionConfig


def test_evaluate_proxy_and_full(tiny_spec):
    spec = tiny_spec(calib_samples=8)
    recipe = CompressionConfig.uniform(bits=4, group_size=32)
    proxy = evaluate(EvalTask(study="t", trial=0, stage="proxy", spec=spec, recipe=recipe))
    full = evaluate(EvalTask(study="t", trial=0, stage="full", spec=spec, recipe=recipe))
    assert proxy.extra["samples"] == proxy_rows(spec.data_policy) == 2 and full.extra["samples"] == 8
    assert full.extra["data"] == spec.data_policy.record()  # recorded with every trial
    assert proxy.key == "t:0:proxy" and full.quality["kl"] > 0 and full.memory_bytes > 0
    assert full.latency_ms is None  # predicted by the engine, not measured, unless spec.measure
    same = evaluate(EvalTask(study="t", trial=1, stage="full", spec=spec, recipe=CompressionConfig()))
    assert same.quality["kl"] < full.quality["kl"]


@pytest.mark.slow
def test_measured_latency(tiny_spec):
    spec = tiny_spec(calib_samples=2, measure=True)
    result = evaluate(EvalTask(study="t", trial=0, stage="full", spec=spec, recipe=CompressionConfig.uniform(bits=8)))
    assert result.latency_ms is not None and result.latency_ms > 0
