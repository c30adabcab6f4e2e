import pytest
import torch

from search.compress import apply
from search.recipe import CompressionConfig as C
from search.space.graph import graph_from_config
from tests.compress.helpers import outputs, tiny_model, token_batch
from tests.families.configs import ALL_FAMILIES as FAMILIES
from tests.families.configs import any_config as tiny_config
from tests.families.configs import family_model


def _layer_shapes(model):
    return {n: (m.in_features, m.out_features) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mlp,heads", [(0.5, 0.5), (0.3, 1.0), (1.0, 0.25)])
def test_removes_exactly_the_requested_neurons_and_heads(family, mlp, heads):
    model = family_model(family)
    graph = graph_from_config(tiny_config(family))
    recipe = C.uniform(width=mlp, heads=heads)
    sliced = apply(model, recipe, calibration=token_batch(4, 16))
    shapes = _layer_shapes(sliced)
    for layer in graph.layers:
        if layer.role != "lm_head":
            assert shapes[layer.name] == graph.sliced_shape(layer, recipe.width), layer.name
    assert graph.kept_neurons(mlp) == round(mlp * graph.intermediate_size)
    out = outputs(sliced, token_batch())
    assert out.shape == outputs(model, token_batch()).shape and torch.isfinite(out).all()


def test_gqa_keeps_whole_key_value_groups():
    model = tiny_model("llama")  # 4 query heads, 2 kv heads of 16
    sliced = apply(model, C.uniform(heads=0.5))
    attn = sliced.model.layers[0].self_attn
    assert (attn.q_proj.out_features, attn.k_proj.out_features, attn.o_proj.in_features) == (32, 16, 32)
    assert (sliced.config.num_attention_heads, sliced.config.num_key_value_heads) == (2, 1)


def _zero_some_channels(model, family):
    """Zero the weights of five MLP neurons and of key/value group 1 (its query heads too) in every block."""
    graph = graph_from_config(tiny_config(family))
    hd, per_group = graph.head_dim, graph.num_heads // graph.num_kv_heads
    neurons = torch.tensor([1, 5, 9, 10, 11])
    q_rows = torch.arange(per_group * hd) + per_group * hd  # query heads of kv group 1
    kv_rows = torch.arange(hd) + hd
    with torch.no_grad():
        for name, module in model.named_modules():
            role = next((layer.role for layer in graph.layers if layer.name == name), None)
            w = module.weight if role else None
            conv = type(module).__name__ == "Conv1D"
            if w is not None and conv:
                w = w.T  # a view: writes go to the Conv1D weight
            if role in ("gate", "up", "fc1"):
                w[neurons] = 0
                if module.bias is not None:
                    module.bias[neurons] = 0
            elif role == "gate_up":  # fused: the gate half, then the up half
                w[neurons] = 0
                w[graph.intermediate_size + neurons] = 0
            elif role in ("down", "fc2"):
                w[:, neurons] = 0
            elif role in ("q", "k", "v"):
                rows = q_rows if role == "q" else kv_rows
                w[rows] = 0
                if module.bias is not None:
                    module.bias[rows] = 0
            elif role == "qkv":  # fused: q rows, then k rows, then v rows
                q_width, kv_width = graph.num_heads * hd, graph.num_kv_heads * hd
                for rows in (q_rows, q_width + kv_rows, q_width + kv_width + kv_rows):
                    w[rows] = 0
                    if module.bias is not None:
                        module.bias[rows] = 0
            elif role == "o":
                w[:, q_rows] = 0


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("calibrated", [False, True])
def test_zero_weight_channels_prune_to_identical_outputs(family, calibrated):
    model = family_model(family)
    _zero_some_channels(model, family)
    graph = graph_from_config(tiny_config(family))
    mlp = 1 - 5 / graph.intermediate_size  # removes exactly the 5 zeroed neurons
    heads = 1 - 1 / graph.num_kv_heads  # removes exactly the zeroed key/value group
    recipe = C.uniform(width=mlp, heads=heads)
    calibration = token_batch(4, 16) if calibrated else None
    ids = token_batch()
    # the model as apply returns it (bfloat16): bit-identical outputs
    assert torch.equal(outputs(apply(model, recipe, calibration), ids), outputs(apply(model, C.uniform()), ids))
    # in float32 too, up to summation order (a matmul over fewer columns may block differently)
    full = apply(model, C.uniform(), dtype=torch.float32)
    sliced = apply(model, recipe, calibration=calibration, dtype=torch.float32)
    assert graph.kept_neurons(mlp) == graph.intermediate_size - 5
    assert graph.kept_kv_heads(heads) == graph.num_kv_heads - 1
    torch.testing.assert_close(outputs(sliced, ids), outputs(full, ids), rtol=1e-5, atol=1e-5)
    assert sum(p.numel() for p in sliced.parameters()) < sum(p.numel() for p in full.parameters())


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "bert"])
def test_sliced_model_decodes_with_kv_cache_like_a_full_forward(family):
    """Width + depth, then prefill 13 tokens and decode one: the same logits as one pass over 14 tokens
    (past Gemma's and Mistral's 8-token windows, so the sliding caches must hold the right keys)."""
    model = family_model(family)
    sliced = apply(model, C.uniform(width=0.5, heads=0.5, keep_blocks=(0, 2)), dtype=torch.float32)
    ids = token_batch(1, 14)
    with torch.no_grad():
        out = sliced(input_ids=ids[:, :-1], use_cache=True)
        step = sliced(input_ids=ids[:, -1:], past_key_values=out.past_key_values, use_cache=True)
        full = sliced(input_ids=ids)
    assert step.logits.shape == (1, 1, 384)
    torch.testing.assert_close(step.logits[0, -1], full.logits[0, -1], rtol=1e-4, atol=1e-4)


def test_calibrated_ranking_follows_activations_not_weights():
    """Neurons with the largest weights but a bias that keeps GELU at 0 are dead: calibration prunes them."""
    model = tiny_model("bert")
    dead = torch.arange(0, 160, 4)  # 40 of 160 neurons per block
    with torch.no_grad():
        for block in model.encoder.layer:
            block.intermediate.dense.weight[dead] *= 10
            block.intermediate.dense.bias[dead] = -1000.0
    recipe = C.uniform(width=0.75)  # keeps 120: exactly the live ones, if ranked by activation
    calibrated = apply(model, recipe, calibration=token_batch(4, 16))
    by_weight = apply(model, recipe)
    for block in calibrated.encoder.layer:
        assert not (block.intermediate.dense.bias == -1000).any()
    assert all(int((b.intermediate.dense.bias == -1000).sum()) == 40 for b in by_weight.encoder.layer)
