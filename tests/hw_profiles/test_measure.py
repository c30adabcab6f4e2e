"""Measuring on this host: workloads run as defined, statistics are honest, the host profile is written."""

import pytest

from search.errors import SpecError
from search.hw_profiles.measure import Measurement, measure_latency, runner


def test_measure_every_causal_workload(tiny_llama):
    for workload in ("encode:16", "prefill:16", "decode:32", "decode:8x2"):
        m = measure_latency(tiny_llama.model, workload, repeats=3, warmup=1)
        assert len(m.samples_ms) == 3 and m.median_ms > 0 and m.spread_ms >= 0
        assert m.threads == 1 and m.clock == "cpu"


def test_decode_keeps_the_context_at_n(tiny_llama):
    run = runner(tiny_llama.model, "decode:24")
    for _ in range(4):
        run()
    assert run.cache.get_seq_length() == 24


def test_encoder_refuses_decode(minilm):
    with pytest.raises(SpecError, match="causal"):
        runner(minilm.model, "decode:16")
    assert measure_latency(minilm.model, "encode:8", repeats=2, warmup=0, clock="wall").clock == "wall"


def test_bad_arguments(tiny_llama):
    with pytest.raises(SpecError):
        measure_latency(tiny_llama.model, "encode:8", repeats=0)
    with pytest.raises(SpecError, match="clock"):
        measure_latency(tiny_llama.model, "encode:8", clock="sundial")


def test_measurement_statistics():
    m = Measurement.of([5.0, 1.0, 3.0, 2.0, 4.0], threads=1)
    assert m.median_ms == 3.0 and m.spread_ms > 0 and m.samples_ms == [5.0, 1.0, 3.0, 2.0, 4.0]


@pytest.mark.slow
def test_profile_command_writes_a_loadable_host_profile(tmp_path):
    from search.cli.main import main
    from search.hw_profiles import load_profile

    out = tmp_path / "host.yaml"
    assert main(["profile", "--out", str(out), "--rounds", "3"]) == 0
    p = load_profile(str(out))
    assert p.measured is not None and p.measured.linear_gflops_by_rows[512] > 0
    assert set(p.measured.block_us) >= {"llama:prefill", "llama:decode", "bert:encode"}
