"""Monotonicity: fewer bits, more structured pruning, lower rank, fewer blocks never predict slower."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search.hw_profiles import list_profiles, load_profile
from search.hw_profiles.latency import predict_latency
from search.recipe import ALLOWED_BITS, CompressionConfig
from search.space.graph import graph_from_config
from tests.conftest import tiny_config

GRAPHS = {
    "llama": graph_from_config(tiny_config("llama", hidden_size=256, intermediate_size=704, num_hidden_layers=4,
                                           num_attention_heads=8, num_key_value_heads=4, vocab_size=1024)),
    "bert": graph_from_config(tiny_config("bert", hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
                                          num_attention_heads=8)),
    "gpt2": graph_from_config(tiny_config("gpt2", n_embd=256, n_layer=3, n_head=8)),
}
PROFILES = {name: load_profile(name) for name in list_profiles()}
SLACK = 1 + 1e-9

cases = st.fixed_dictionaries({
    "device": st.sampled_from(sorted(PROFILES)),
    "family": st.sampled_from(sorted(GRAPHS)),
    "kind": st.sampled_from(["encode", "prefill", "decode"]),
    "tokens": st.sampled_from([1, 16, 128, 512]),
    "batch": st.sampled_from([1, 4]),
    "group_size": st.sampled_from([32, 128, None]),
    "symmetric": st.booleans(),
    "bits": st.sampled_from(ALLOWED_BITS),
    "rank": st.sampled_from([None, 0.75, 0.5, 0.25, 0.1]),
    "width": st.sampled_from([1.0, 0.75, 0.5, 0.25]),
    "heads": st.sampled_from([1.0, 0.5, 0.25]),
})
fast = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _workload(c):
    kind = c["kind"]
    if c["family"] == "bert":
        kind = "encode"
    elif kind == "encode":
        kind = "prefill"
    return f"{kind}:{c['tokens']}x{c['batch']}"


def _time(c, **change):
    c = {**c, **change}
    recipe = CompressionConfig.uniform(
        bits=c["bits"], group_size=c["group_size"], symmetric=c["symmetric"], rank=c["rank"],
        width=c["width"], heads=c["heads"], sparsity=c.get("sparsity", 0.0),
        sparsity_pattern=c.get("pattern", "unstructured"), keep_blocks=c.get("keep"))
    return predict_latency(GRAPHS[c["family"]], recipe, _workload(c), PROFILES[c["device"]]).total_ms


@fast
@given(cases, st.sampled_from(ALLOWED_BITS), st.sampled_from(ALLOWED_BITS))
def test_fewer_bits_never_slower(c, b1, b2):
    lo, hi = sorted((b1, b2))
    assert _time(c, bits=lo) <= _time(c, bits=hi) * SLACK


@fast
@given(cases, st.sampled_from([0.1, 0.25, 0.5, 0.75]), st.sampled_from([0.1, 0.25, 0.5, 0.75]))
def test_lower_rank_never_slower(c, r1, r2):
    lo, hi = sorted((r1, r2))
    assert _time(c, rank=lo) <= _time(c, rank=hi) * SLACK


@fast
@given(cases, st.sampled_from([0.25, 0.5, 0.75, 1.0]), st.sampled_from([0.25, 0.5, 0.75, 1.0]))
def test_narrower_never_slower(c, w1, w2):
    lo, hi = sorted((w1, w2))
    assert _time(c, width=lo) <= _time(c, width=hi) * SLACK
    assert _time(c, heads=lo) <= _time(c, heads=hi) * SLACK


@fast
@given(cases, st.sampled_from([0.0, 0.25, 0.5, 0.75]), st.sampled_from([0.0, 0.25, 0.5, 0.75]))
def test_more_channel_pruning_never_slower(c, s1, s2):
    lo, hi = sorted((s1, s2))
    assert _time(c, sparsity=hi, pattern="channel") <= _time(c, sparsity=lo, pattern="channel") * SLACK


@fast
@given(cases, st.sampled_from(["unstructured", "2:4"]))
def test_sparsity_never_slower_than_dense(c, pattern):
    assert _time(c, sparsity=0.5, pattern=pattern) <= _time(c, sparsity=0.0) * SLACK


@fast
@given(cases, st.sets(st.integers(0, 2), min_size=1))
def test_fewer_blocks_never_slower(c, keep):
    fewer = tuple(sorted(keep))
    more = tuple(sorted(set(keep) | {0}))
    assert _time(c, keep=fewer) <= _time(c, keep=more) * SLACK
    assert _time(c, keep=more) <= _time(c, keep=None) * SLACK


@pytest.mark.parametrize("device", sorted(PROFILES))
def test_quantized_never_slower_than_16_bit_on_decode(device):
    c = {"device": device, "family": "llama", "kind": "decode", "tokens": 128, "batch": 1, "group_size": 128,
         "symmetric": False, "bits": 16, "rank": None, "width": 1.0, "heads": 1.0}
    times = [_time(c, bits=b) for b in sorted(ALLOWED_BITS, reverse=True)]  # 16, 8, 6, ... 2
    assert all(later <= earlier * SLACK for earlier, later in zip(times, times[1:], strict=False))
