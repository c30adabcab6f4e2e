"""The latency model on the newer families: every published architecture predicts, the monotonic properties
hold, and sliding windows, soft-capping and extra norms cost what they should."""

import json

import pytest

from search.hw_profiles import load_profile
from search.hw_profiles.latency import elementwise_elements, predict_latency
from search.hw_profiles.profile import DATA_DIR
from search.recipe import CompressionConfig as C
from search.space.graph import graph_from_config
from tests.families.configs import NEW_FAMILIES, family_config

ARCH = {k: v for k, v in json.loads((DATA_DIR / "architectures.json").read_text()).items() if k != "_about"}
WORKLOADS = ["decode:128", "prefill:256", "decode:8192"]


@pytest.mark.parametrize("name", ARCH)
def test_every_published_architecture_predicts(name):
    graph = graph_from_config(ARCH[name])
    for device in ("rpi5", "apple-m2", "host"):
        for workload in WORKLOADS:
            report = predict_latency(graph, C.uniform(bits=4, group_size=32), workload, load_profile(device))
            assert report.total_ms > 0 and report.kv_cache_bytes > 0


def _graphs():
    yield from ((t, graph_from_config(family_config(t))) for t in NEW_FAMILIES)
    yield from ((n, graph_from_config(ARCH[n])) for n in ("gemma-2-2b", "gemma-3-1b"))


@pytest.mark.parametrize("device", ["rpi5", "jetson-orin-nano", "host"])
def test_less_compression_is_never_faster(device):
    profile = load_profile(device)
    ladders = [[C.uniform(bits=b, group_size=32) for b in (16, 8, 4, 2)],
               [C.uniform(width=w) for w in (1.0, 0.75, 0.5)],
               [C.uniform(heads=h) for h in (1.0, 0.5)],
               [C.uniform(keep_blocks=k) for k in (None, (0, 1), (0,))]]
    for name, graph in _graphs():
        for workload in WORKLOADS:
            for ladder in ladders:
                times = [predict_latency(graph, r, workload, profile).total_ms for r in ladder]
                assert times == sorted(times, reverse=True), (name, workload, times)


def _no_window(graph):
    return graph.model_copy(update={"sliding_window": None, "sliding_blocks": ()})


def test_gemma2_kv_cache_holds_the_window_in_local_blocks():
    g = graph_from_config(ARCH["gemma-2-2b"])
    assert (g.sliding_window, g.sliding_blocks) == (4096, tuple(range(0, 26, 2)))
    p = load_profile("rpi5")
    per_token = 2 * 4 * 256 * 2  # K and V, 4 kv heads of 256, 2 bytes
    short = predict_latency(g, C.uniform(), "decode:1024", p)
    long = predict_latency(g, C.uniform(), "decode:8192", p)
    assert short.kv_cache_bytes == 26 * 1024 * per_token
    assert long.kv_cache_bytes == (13 * 4096 + 13 * 8192) * per_token
    assert long.kv_cache_bytes < predict_latency(_no_window(g), C.uniform(), "decode:8192", p).kv_cache_bytes


@pytest.mark.parametrize("workload", ["decode:4096", "decode:16384", "prefill:2048", "prefill:8192"])
def test_sliding_window_attention_costs_only_its_window(workload):
    windowed = graph_from_config(family_config("mistral", sliding_window=4096, num_hidden_layers=2))
    full = _no_window(windowed)
    p = load_profile("apple-m2")
    a, b = (predict_latency(g, C.uniform(), workload, p) for g in (windowed, full))
    attn_a = [op for op in a.layers if op.kind == "attention"]
    attn_b = [op for op in b.layers if op.kind == "attention"]
    tokens = int(workload.split(":")[1])
    if tokens <= 4096:
        assert [op.flops for op in attn_a] == [op.flops for op in attn_b] and a.total_ms == b.total_ms
    else:
        assert all(x.flops < y.flops for x, y in zip(attn_a, attn_b, strict=True)) and a.total_ms < b.total_ms
    if workload == "prefill:8192":  # 4 flops per pair per head dim, W*T - W^2/2 pairs
        assert attn_a[0].flops == 4 * 4 * 16 * (4096 * 8192 - 4096 ** 2 / 2)
    if workload == "decode:16384":
        assert attn_a[0].flops == 4 * 4 * 16 * 4096


def test_soft_capping_adds_work():
    g = graph_from_config(family_config("gemma2"))
    plain = g.model_copy(update={"attn_softcap": None, "final_softcap": None})
    p = load_profile("rpi5")
    for workload in ("decode:128", "prefill:64"):
        a, b = (predict_latency(x, C.uniform(), workload, p) for x in (g, plain))
        ops_a, ops_b = ({op.name: op for op in r.layers} for r in (a, b))
        assert ops_a["block1.attention"].flops > ops_b["block1.attention"].flops
        assert ops_a["forward"].bytes > ops_b["forward"].bytes
        assert a.total_ms >= b.total_ms


def test_extra_norms_are_glue_work():
    gemma3 = graph_from_config(family_config("gemma3_text"))
    mistral = graph_from_config(family_config("mistral"))  # same widths, two norms per block, no q/k norms
    extra = 2 * 64 + (4 + 2) * 24  # two sandwich norms on the hidden state, q/k norms on every head
    assert gemma3.extra_norm_width == extra and mistral.extra_norm_width == 0
    assert elementwise_elements(gemma3, 10, 1.0) - elementwise_elements(mistral, 10, 1.0) == 10 * 2 * extra
