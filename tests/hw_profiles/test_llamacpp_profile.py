"""The llama.cpp profile: its cost tables, the fit, the shipped host-llamacpp profile, and predict --measure."""

import json
from pathlib import Path

import numpy as np
import pytest

from search.cli.main import main
from search.formats.filetypes import recipe_for_filetype
from search.hw_profiles import load_profile
from search.hw_profiles.gguf_costs import GgufTables
from search.hw_profiles.latency import predict_latency
from search.hw_profiles.llamacpp_profile import (
    COLD,
    FitCase,
    build_profile,
    features,
    fit,
    fit_cases,
    profile_error,
    uniform_recipe,
)
from search.hw_profiles.runtimes import runtime_caps
from search.space.graph import graph_from_config
from search.workload import Workload

TINY = dict(model_type="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=256, max_position_embeddings=256, tie_word_embeddings=False)


def _tables(**change) -> GgufTables:
    base = dict(runtime="test", ns_per_weight={"F16": {1: 0.06, 32: 0.8, 256: 5.0}, "BF16": {1: 0.05, 256: 3.0},
                                               "Q4_0": {1: 0.04, 256: 4.0}, "Q6_K": {1: 0.03, 256: 2.9}},
                cold_ns_per_weight={"F16": 0.08, "Q4_0": 0.05}, cold_ns_per_byte={256: 0.5}, warm_bytes=10, cold_bytes=1000)
    return GgufTables(**{**base, **change})


def test_one_row_cost_moves_from_warm_to_cold_with_the_model_size():
    t = _tables()
    assert t.ns("F16", 1, 5) == pytest.approx(0.06)
    assert t.ns("F16", 1, 10_000) == pytest.approx(0.08)
    assert t.ns("F16", 1, 100) == pytest.approx(0.07)  # halfway in log bytes
    assert t.ns("BF16", 1, 10_000) == pytest.approx(0.05)  # no cold entry: the warm rate


def test_many_rows_interpolate_linearly_in_rows_and_grow_past_the_table():
    t = _tables()
    assert t.ns("F16", 32, 1) == pytest.approx(0.8)
    assert t.ns("F16", 144, 1) == pytest.approx(2.9)  # halfway in rows: a product is affine in its rows
    assert t.ns("F16", 512, 1) == pytest.approx(10.0)
    assert t.ns("F16", 256, 1e9) == pytest.approx(5.0 + 2 * 0.5)  # a large model's prompt: + per byte


def test_layers_without_a_gguf_type_run_bf16_or_the_fastest_type_holding_their_bits():
    t = _tables()
    assert t.type_for("Q4_0", 4) == "Q4_0"
    assert t.type_for(None, 16) == "BF16"  # what the GGUF writer writes for a dense bfloat16 layer
    assert t.type_for(None, 5, 1, 0) == "Q6_K"  # 6 bits hold 5; cheaper than the 16-bit types
    assert t.type_for(None, 4, 1, 0) == "Q6_K"


def test_fit_recovers_known_costs():
    rng = np.random.default_rng(0)
    truth = {"a": 2e-3, "b": 5e-9, "c": 0.0}
    rows = [{"a": 1.0, "b": float(rng.uniform(1e5, 1e7)), "c": float(rng.uniform(0, 10))} for _ in range(12)]
    seconds = [sum(truth[k] * v for k, v in r.items()) for r in rows]
    coef = fit(rows, seconds)
    assert coef["a"] == pytest.approx(2e-3, rel=1e-6) and coef["b"] == pytest.approx(5e-9, rel=1e-6)
    assert coef["c"] == pytest.approx(0.0, abs=1e-12)


def _synthetic_coefficients() -> dict:
    coef = {"forward:llama:decode": 150e-6, "forward:llama:prefill": 400e-6, "block:llama:decode": 30e-6,
            "block:llama:prefill": 60e-6, "element:llama:decode": 2e-9, "element:llama:prefill": 1e-9,
            "forward:bert:encode": 300e-6, "block:bert:encode": 80e-6, "element:bert:encode": 1.5e-9,
            "attention:encode:64": 1 / 35e9, "attention:encode:32": 1 / 25e9, "attention:prefill:64": 1 / 40e9,
            "attention:decode:64": 1 / 9e9, "attention:decode:32": 1 / 3e9, "attention:prefill:32": 1 / 30e9,
            "attention:decode:128": 1 / 12e9, "attention:prefill:128": 1 / 50e9,
            "bytes@32:cold": 0.05e-9, "bytes@256:cold": 0.4e-9, "row@1": 4e-9}
    for i, t in enumerate(("F16", "BF16", "Q8_0", "Q6_K", "Q5_K", "Q5_1", "Q5_0", "Q4_K", "Q4_1", "Q4_0", "Q3_K",
                           "Q2_K")):
        coef[f"{t}@1"] = (0.02 + 0.003 * i) * 1e-9
        coef[f"{t}@1:cold"] = (0.04 + 0.002 * i) * 1e-9
        coef[f"{t}@32"] = (0.5 + 0.05 * i) * 1e-9
        coef[f"{t}@256"] = (3.0 + 0.3 * i) * 1e-9
    return coef


def test_the_latency_model_prices_exactly_what_the_fit_measured():
    """Features (what the fit prices) and predict_latency (what users get) must describe the same model:
    timings generated from known costs are predicted exactly by the profile built from them."""
    coef = _synthetic_coefficients()
    profile = build_profile(coef, threads=1, load="0.00 0.00 0.00")
    cases = fit_cases()
    assert {c.workload.split(":")[0] for c in cases} == {"decode", "prefill", "encode"}
    for case in cases[::5] + [c for c in cases if c.workload.startswith("encode")][::3]:
        row = features(graph_from_config(case.config), uniform_recipe(case.gtype), Workload.parse(case.workload))
        seconds = sum(coef.get(k, 0.0) * v for k, v in row.items())
        assert profile_error(profile, case, seconds) == pytest.approx(0.0, abs=5e-3), case.label  # + memory terms
    # a recipe the fit never saw: a file type's mixture with a tied head, pruned width and depth
    cfg = dict(COLD, tie_word_embeddings=True, vocab_size=4096)
    graph = graph_from_config(cfg)
    recipe = recipe_for_filetype(graph, "Q4_K_M").model_copy(update={"keep_blocks": (0, 3, 6, 9)})
    for workload in ("decode:128", "prefill:256"):
        row = features(graph, recipe, Workload.parse(workload))
        seconds = sum(coef.get(k, 0.0) * v for k, v in row.items())
        assert predict_latency(graph, recipe, workload, profile).total_ms * 1e-3 == pytest.approx(seconds, rel=5e-3)


def test_fit_models_are_not_the_accuracy_bench_models():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_llamacpp", Path(__file__).parents[2] / "bench" /
                                                  "latency_accuracy_llamacpp.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    shapes = {(c.config["hidden_size"], c.config["intermediate_size"], c.config["num_hidden_layers"])
              for c in fit_cases()}
    assert not shapes & {(c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"])
                         for c in bench.MODELS.values()}


def test_shipped_profile_is_a_measured_llamacpp_device():
    profile = load_profile("host-llamacpp")
    assert profile.runtime.startswith("llama.cpp (CPU, 1 threads)")
    assert runtime_caps(profile).name == "llama.cpp"
    m = profile.measured
    assert m.gguf is not None and m.load and m.date and m.cpu
    assert set(runtime_caps(profile).weight_formats) <= set(m.gguf.ns_per_weight)
    # measured here: a ~100M model decodes faster in Q4_0 and Q8_0 than in F16 (fewer bytes streamed)
    graph = graph_from_config(COLD)
    times = {t: predict_latency(graph, recipe_for_filetype(graph, t), "decode:128", profile).total_ms
             for t in ("F16", "Q8_0", "Q4_0")}
    assert times["Q8_0"] < times["F16"] and times["Q4_0"] < times["F16"]


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(TINY))
    return path


def test_predict_measure_times_the_gguf_in_llamacpp(tmp_path, capsys):
    argv = ["predict", "--device", "host-llamacpp", "--model", str(_config(tmp_path)), "--format", "Q4_0",
            "--workload", "decode:128"]
    assert main([*argv, "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)["latency_ms"]
    assert main([*argv, "--measure", "--json", "--repeats", "5"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["predicted_ms"] == pytest.approx(predicted)
    assert data["measured_ms"] > 0 and data["runtime"] == "llama.cpp"
    assert data["measured_tokens_per_s"] == pytest.approx(1000 / data["measured_ms"])
    assert data["predicted_tokens_per_s"] == pytest.approx(1000 / data["predicted_ms"])
    assert len(data["measured"]["samples_ms"]) == 5 and data["measured"]["threads"] == 1


def test_predict_measure_times_an_encoder_in_llamacpp(tmp_path, capsys):
    """llama.cpp runs BERT as an embedding model: encode:N is every row's hidden state, timed like a prompt."""
    path = tmp_path / "bert.json"
    path.write_text(json.dumps(dict(model_type="bert", hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                                    intermediate_size=256, vocab_size=384, max_position_embeddings=256)))
    assert main(["predict", "--device", "host-llamacpp", "--model", str(path), "--format", "Q8_0",
                 "--workload", "encode:64", "--measure", "--json", "--repeats", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["measured_ms"] > 0 and data["predicted_ms"] > 0
    assert data["measured_tokens_per_s"] == pytest.approx(64 * 1000 / data["measured_ms"])
    # an encoder has no prompt to decode, a causal model no encoder pass
    assert main(["predict", "--device", "host-llamacpp", "--model", str(path), "--format", "Q8_0",
                 "--workload", "prefill:64", "--measure"]) == 2
    assert main(["predict", "--device", "host-llamacpp", "--model", str(_config(tmp_path)), "--format", "Q8_0",
                 "--workload", "encode:64", "--measure"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_predict_measure_prefill_text(tmp_path, capsys):
    assert main(["predict", "--device", "host-llamacpp", "--model", str(_config(tmp_path)), "--format", "F16",
                 "--workload", "prefill:32", "--measure", "--repeats", "3"]) == 0
    out = capsys.readouterr().out
    assert "measured in llama.cpp" in out and "predicted for host-llamacpp" in out and "tokens/s" in out


@pytest.mark.parametrize("extra, message", [
    (["--format", "Q4_0", "--workload", "decode:16x2"], "batch 1"),
    (["--bits", "4", "--workload", "decode:16"], "llama.cpp cannot run this recipe"),
])
def test_predict_measure_refuses_what_llamacpp_cannot_time(tmp_path, capsys, extra, message):
    assert main(["predict", "--device", "host-llamacpp", "--model", str(_config(tmp_path)), *extra,
                 "--measure"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_profile_runtime_llamacpp_writes_a_loadable_profile(tmp_path, capsys, monkeypatch):
    """The whole pipeline (synthetic GGUFs -> llama.cpp timings -> fit -> YAML) on two tiny models."""
    from search.hw_profiles import llamacpp_profile

    small = dict(TINY, hidden_size=256, intermediate_size=256)
    cases = [FitCase(f"{n}:{t}:{w}", dict(small, num_hidden_layers=n), t, w)
             for n in (1, 2) for t in ("F16", "Q4_0") for w in ("decode:16", "prefill:16")]
    monkeypatch.setattr(llamacpp_profile, "fit_cases", lambda: cases)
    out = tmp_path / "p.yaml"
    assert main(["profile", "--runtime", "llama.cpp", "--out", str(out), "--rounds", "3"]) == 0
    assert "fit on 8 synthetic-model timings" in capsys.readouterr().out
    profile = load_profile(out)
    assert profile.name == "host-llamacpp" and profile.calibration["rows"] == 8
    assert profile.measured.gguf.ns_per_weight["Q4_0"][1] >= 0
