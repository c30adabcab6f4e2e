"""Graphs of the newer families: defaults as transformers fills them, fused shapes, sliding windows."""

import pytest
import torch

from search.models import build_from_config
from search.space.graph import graph_from_config, graph_from_model
from tests.compress.helpers import token_batch
from tests.families.configs import NEW_FAMILIES, any_config, family_config, family_model

# fields a config.json may leave out: the graph must fill them in as transformers does
OPTIONAL = ("head_dim", "sliding_window", "sliding_window_pattern", "tie_word_embeddings", "query_pre_attn_scalar",
            "final_logit_softcapping", "attn_logit_softcapping", "max_position_embeddings")


@pytest.mark.parametrize("model_type", ["llama", "qwen2", *NEW_FAMILIES])
def test_defaults_of_a_sparse_config_match_transformers(model_type):
    config = {k: v for k, v in any_config(model_type, num_attention_heads=8, num_key_value_heads=8).items()
              if k not in OPTIONAL}
    model = build_from_config(config)
    graph = graph_from_config(config)
    assert graph_from_model(model) == graph
    assert graph.total_params == sum(p.numel() for p in model.parameters())
    assert graph.layer("lm_head").tied == (model.lm_head.weight is model.model.embed_tokens.weight)
    attn = model.model.layers[0].self_attn
    assert graph.head_dim == attn.head_dim
    assert graph.max_positions == model.config.max_position_embeddings
    window = getattr(model.config, "sliding_window", None)
    assert graph.sliding_window == window
    assert (graph.attn_softcap, graph.final_softcap) == (getattr(model.config, "attn_logit_softcapping", None),
                                                         getattr(model.config, "final_logit_softcapping", None))


def test_gemma_and_qwen3_facts():
    g2 = graph_from_config(family_config("gemma2"))
    assert (g2.head_dim, g2.sliding_window, g2.sliding_blocks) == (24, 8, (0, 2))  # every other block is local
    assert (g2.attn_softcap, g2.final_softcap) == (50.0, 30.0) and g2.layer("lm_head").tied
    assert g2.layer("model.layers.0.self_attn.o_proj").in_features == 4 * 24  # heads x head_dim, not hidden
    assert {o.name.rsplit(".", 2)[-2] for o in g2.others if o.block == 0} == {
        "input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"}
    g3 = graph_from_config(family_config("gemma3_text", num_hidden_layers=12, sliding_window_pattern=6))
    assert g3.sliding_blocks == (0, 1, 2, 3, 4, 6, 7, 8, 9, 10)  # five local blocks, then a global one
    assert (g3.attn_softcap, g3.final_softcap) == (None, None)
    q3 = graph_from_config(family_config("qwen3"))
    assert {o.name for o in q3.others if o.block == 1} >= {"model.layers.1.self_attn.q_norm.weight",
                                                          "model.layers.1.self_attn.k_norm.weight"}
    assert q3.sliding_window is None
    windowed = graph_from_config(family_config("qwen3", use_sliding_window=True, sliding_window=8,
                                               max_window_layers=1))
    assert windowed.sliding_blocks == (1, 2)


def test_phi3_fused_projections():
    g = graph_from_config(family_config("phi3"))
    qkv, gate_up = g.layer("model.layers.0.self_attn.qkv_proj"), g.layer("model.layers.0.mlp.gate_up_proj")
    assert (qkv.role, qkv.out_features) == ("qkv", (4 + 2 * 2) * 16)  # 4 query heads, 2 key and 2 value heads
    assert (gate_up.role, gate_up.out_features) == ("gate_up", 2 * 176)
    assert {layer.role for layer in g.layers} == {"qkv", "o", "gate_up", "down", "lm_head"}


@pytest.mark.parametrize("model_type,overrides", [
    ("gemma2", {}), ("gemma3_text", {}), ("mistral", {}), ("qwen3", {}), ("phi3", {}),
    ("phi3", {"sliding_window": 8}), ("qwen3", {"use_sliding_window": True, "sliding_window": 8,
                                                "max_window_layers": 0})])
def test_attention_span_is_what_the_model_attends_to(model_type, overrides):
    """One block: the last token's logits change with the first token exactly when the span reaches it,
    and the KV cache holds the span (transformers keeps window - 1 keys; the new token is the last)."""
    overrides = dict(overrides, num_hidden_layers=1)
    model = family_model(model_type, **overrides)
    graph = graph_from_config(family_config(model_type, **overrides))
    ids = token_batch(1, 12)
    changed = ids.clone()
    changed[0, 0] = (ids[0, 0] + 1) % 384
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
        last_changed = not torch.equal(out.logits[0, -1], model(input_ids=changed).logits[0, -1])
    span = graph.attention_span(0, 12)
    assert last_changed == (span == 12)
    cached = out.past_key_values.layers[0].keys.shape[-2]
    assert cached in (span, span - 1) and (span < 12) == (cached < 12)
