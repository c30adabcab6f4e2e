"""Weights beyond the caches stream at the measured cold rate; small weight sets keep the warm grid rates."""

from search.hw_profiles import load_profile
from search.hw_profiles.latency import predict_latency
from search.recipe import CompressionConfig
from search.space.graph import graph_from_config

BIG = {"model_type": "llama", "hidden_size": 768, "intermediate_size": 2048, "num_hidden_layers": 4,
       "num_attention_heads": 12, "num_key_value_heads": 4, "vocab_size": 8000, "tie_word_embeddings": True}
SMALL = dict(BIG, hidden_size=128, intermediate_size=256, num_attention_heads=4, num_key_value_heads=2,
             vocab_size=256, num_hidden_layers=1)


def _with_cold(gbs):
    prof = load_profile("host")
    return prof.model_copy(update={"measured": prof.measured.model_copy(update={"cold_stream_gbs": gbs})})


def test_cold_rate_slows_a_model_larger_than_the_caches():
    graph = graph_from_config(BIG)
    warm = predict_latency(graph, CompressionConfig(), "decode:128", _with_cold(None))
    cold = predict_latency(graph, CompressionConfig(), "decode:128", _with_cold(1.0))
    lm_head = next(op for op in cold.layers if op.name == "lm_head")
    weight_bytes = 768 * 8000 * 2
    assert cold.total_ms > warm.total_ms
    assert lm_head.memory_ms >= weight_bytes / 1e9 * 1e3  # at least its weights at 1 GB/s


def test_cold_rate_leaves_a_cache_resident_model_alone():
    graph = graph_from_config(SMALL)
    warm = predict_latency(graph, CompressionConfig(), "decode:128", _with_cold(None))
    cold = predict_latency(graph, CompressionConfig(), "decode:128", _with_cold(1.0))
    assert cold.total_ms == warm.total_ms
