import json

import pytest

from search.errors import ModelError
from search.models import build_from_config
from search.recipe import Width
from search.space.graph import graph_from_config, graph_from_model
from tests.conftest import tiny_config
from tests.families.configs import ALL_FAMILIES, any_config


@pytest.mark.parametrize("model_type", ALL_FAMILIES)
def test_graph_from_config_matches_the_built_model(model_type):
    """Every parameter of the real model is either a listed layer or a listed 'other' param."""
    config = any_config(model_type)
    model = build_from_config(config)
    from_cfg = graph_from_config(config)
    assert graph_from_model(model) == from_cfg
    params = dict(model.named_parameters())
    listed = {o.name: o.numel for o in from_cfg.others}
    for layer in from_cfg.layers:
        if layer.tied:
            continue
        listed[layer.name + ".weight"] = layer.in_features * layer.out_features
        if layer.bias:
            listed[layer.name + ".bias"] = layer.out_features
    assert {n: p.numel() for n, p in params.items()} == listed
    assert from_cfg.total_params == sum(p.numel() for p in model.parameters())


def test_roles_and_gpt2_conv1d_shapes():
    g = graph_from_config(tiny_config("gpt2"))
    qkv = g.layer("transformer.h.0.attn.c_attn")
    assert (qkv.role, qkv.in_features, qkv.out_features) == ("qkv", 64, 192)
    assert g.layer("lm_head").tied
    llama = graph_from_config(tiny_config("llama"))
    assert {layer.role for layer in llama.layers} == {"q", "k", "v", "o", "gate", "up", "down", "lm_head"}
    assert llama.layer("model.layers.0.self_attn.k_proj").out_features == 32  # 2 kv heads x 16


def test_width_slicing_keeps_whole_kv_groups():
    g = graph_from_config(tiny_config("llama"))
    w = Width(heads=0.5, mlp=0.5)
    assert g.sliced_shape(g.layer("model.layers.0.self_attn.q_proj"), w) == (64, 32)
    assert g.sliced_shape(g.layer("model.layers.0.self_attn.k_proj"), w) == (64, 16)
    assert g.sliced_shape(g.layer("model.layers.0.self_attn.o_proj"), w) == (32, 64)
    assert g.sliced_shape(g.layer("model.layers.0.mlp.down_proj"), w) == (88, 64)


def test_unsupported_architecture_names_the_supported_ones(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "mamba", "hidden_size": 8}))
    with pytest.raises(ModelError, match="unsupported architecture 'mamba'.*bert, gemma2, gemma3_text, gpt2, llama, "
                                         "mistral, phi3, qwen2, qwen3$"):
        graph_from_config(path)
    path.write_text(json.dumps({"model_type": "gemma3", "text_config": {}}))  # multimodal Gemma 3
    with pytest.raises(ModelError, match="unsupported architecture 'gemma3'.*give the text model's config"):
        graph_from_config(path)
    with pytest.raises(ModelError, match="does not exist"):
        graph_from_config(tmp_path / "nope.json")


def test_demo_minilm_graph(minilm):
    g = minilm.graph
    assert (g.family, g.num_blocks, g.hidden_size, len(g.layers)) == ("bert", 6, 384, 36)
    assert g.total_params == 22_565_376
