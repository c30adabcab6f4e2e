"""The end-to-end calibration references stay disjoint from the accuracy bench, and the fit respects bounds."""

import importlib.util
from pathlib import Path

from search.hw_profiles import load_profile
from search.hw_profiles.calibrate import Case, fit
from search.hw_profiles.host_reference import REFERENCES
from search.hw_profiles.latency import predict_latency
from search.recipe import CompressionConfig
from search.space.graph import graph_from_config
from search.workload import Workload

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("latency_accuracy", ROOT / "bench" / "latency_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_references_are_not_the_bench_models():
    bench = _bench()
    minilm_shape = (384, 1536, 6)  # demo:minilm: hidden, intermediate, blocks
    for config, _ in REFERENCES:
        assert config != bench.LLAMA_100M
        shape = (config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"])
        assert shape != minilm_shape
        assert shape != (768, 2048, 12)


def test_fit_at_the_efficiency_bound_slows_the_profile_down():
    prof = load_profile("host")
    prof = prof.model_copy(update={"efficiency": prof.efficiency.model_copy(update={"compute": 1.0})})
    config, _ = REFERENCES[0]
    graph = graph_from_config(config)
    workload = Workload.parse("encode:192")
    predicted = predict_latency(graph, CompressionConfig(), workload, prof).total_ms
    case = Case("slower", graph, CompressionConfig(), workload, measured_ms=predicted * 1.3)
    fitted = fit(prof, [case], ("compute", "overhead"))
    assert fitted.efficiency.compute <= 1.0
    assert abs(predict_latency(graph, CompressionConfig(), workload, fitted).total_ms / case.measured_ms - 1) < 0.02
