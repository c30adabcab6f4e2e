"""Search fixtures: a tiny Llama as a config.json reference, results in a temporary directory."""

import json

import pytest

from tests.conftest import tiny_config

BUDGET_SHARE = 0.75  # of the uncompressed model's predicted latency: it must be compressed to fit


@pytest.fixture
def results(tmp_path, monkeypatch):
    folder = tmp_path / "results"
    monkeypatch.setenv("DEVICEFIT_RESULTS", str(folder))
    return folder


@pytest.fixture
def tiny_ref(tmp_path) -> str:
    path = tmp_path / "tiny-llama.json"
    path.write_text(json.dumps(tiny_config("llama")))
    return str(path)


@pytest.fixture
def tiny_spec(tiny_ref, results):
    from search.spec import SearchSpec

    budget = f"{BUDGET_SHARE * uncompressed_latency(tiny_ref):.4f}ms"

    def make(**overrides):
        fields = dict(model=tiny_ref, workload="prefill:128", budget={"max_latency": budget}, trials=30,
                      calib_samples=4, seq_len=32, storage="memory://")
        fields.update(overrides)
        return SearchSpec(**fields)

    return make


def uncompressed_latency(ref: str, workload: str = "prefill:128", device: str = "rpi5") -> float:
    from search.hw_profiles.latency import predict_latency
    from search.hw_profiles.profile import load_profile
    from search.models import load_graph
    from search.recipe import CompressionConfig

    return predict_latency(load_graph(ref), CompressionConfig(), workload, load_profile(device)).total_ms
