"""Thread counts: a CPU profile's compute peaks count the cores its runtime threads use."""

import json

import pytest

from search.cli.main import main
from search.hw_profiles import list_profiles, load_profile
from search.hw_profiles.latency import predict_latency
from search.recipe import CompressionConfig
from search.space.graph import graph_from_config
from tests.conftest import tiny_config

GRAPH = graph_from_config(tiny_config("llama", hidden_size=512, intermediate_size=1408, num_hidden_layers=4,
                                      num_attention_heads=8, num_key_value_heads=4, vocab_size=2048))
CPU = [load_profile(n) for n in list_profiles() if load_profile(n).threads is not None]


def _ms(profile, workload="prefill:256"):
    return predict_latency(GRAPH, CompressionConfig.uniform(bits=4, group_size=32), workload, profile).total_ms


def test_the_llamacpp_cpu_profiles_name_their_threads():
    assert {p.name for p in CPU} == {"rpi4", "rpi5", "intel-core-ultra-258v", "snapdragon-8-gen-2",
                                     "snapdragon-7-plus-gen-2"}
    assert load_profile("apple-m2").with_threads(1) == load_profile("apple-m2")  # a GPU runtime: no CPU threads


@pytest.mark.parametrize("profile", CPU, ids=lambda p: p.name)
def test_fewer_threads_never_faster_and_more_add_nothing(profile):
    n = profile.threads
    times = [_ms(profile.with_threads(t)) for t in range(1, n + 1)]
    assert times == sorted(times, reverse=True)
    assert times[0] > 1.5 * times[-1]  # a compute-bound prompt: one thread is much slower than all of them
    assert _ms(profile.with_threads(n + 4)) == _ms(profile)
    for t in range(1, n + 1):  # decode never gets faster with fewer threads either
        assert _ms(profile.with_threads(t), "decode:128") >= _ms(profile, "decode:128") * (1 - 1e-12)


def test_calibration_rows_use_their_thread_count(tmp_path):
    from search.hw_profiles.calibrate import read_measurements

    path = tmp_path / "m.csv"
    path.write_text("device,model,quant,bpw,threads,metric,value\n"
                    "rpi5,llama-3.2-1b,Q4_0,,4,pp,40\nrpi5,llama-3.2-1b,Q4_0,,2,pp,40\nrpi5,llama-3.2-1b,Q4_0,,0,pp,40\n")
    four, two, unknown = read_measurements(path, "rpi5")
    p = load_profile("rpi5")
    assert (four.threads, two.threads, unknown.threads) == (4, 2, None)
    assert two.predict_ms(p) > 1.8 * four.predict_ms(p) and unknown.predict_ms(p) == four.predict_ms(p)


def test_predict_threads_cli(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(tiny_config("llama", hidden_size=512, intermediate_size=1408)))
    out = {}
    for threads in ("4", "1"):
        assert main(["predict", "--device", "rpi5", "--model", str(config), "--format", "Q4_0",
                     "--workload", "prefill:128", "--threads", threads, "--json"]) == 0
        out[threads] = json.loads(capsys.readouterr().out)["latency_ms"]
    assert out["1"] > 2 * out["4"]
    assert main(["predict", "--device", "rpi5", "--model", str(config), "--threads", "0"]) == 2
    assert "--threads" in capsys.readouterr().err
