import pytest
import torch

from search.compress import apply
from search.errors import RecipeError
from search.recipe import CompressionConfig as C
from tests.compress.helpers import outputs, tiny_model, token_batch


def test_drops_blocks_and_reindexes_llama():
    model = tiny_model("llama")
    kept_weight = model.model.layers[2].mlp.up_proj.weight.detach().to(torch.bfloat16)
    pruned = apply(model, C.uniform(keep_blocks=(0, 2)))
    assert len(pruned.model.layers) == 2 and pruned.config.num_hidden_layers == 2
    assert [b.self_attn.layer_idx for b in pruned.model.layers] == [0, 1]
    assert torch.equal(pruned.model.layers[1].mlp.up_proj.weight, kept_weight)
    assert len(model.model.layers) == 4 and model.config.num_hidden_layers == 4  # the input is untouched
    ids = token_batch(1, 6)
    with torch.no_grad():
        out = pruned(input_ids=ids, use_cache=True)
        nxt = pruned(input_ids=ids[:, -1:], past_key_values=out.past_key_values, use_cache=True)
    assert torch.isfinite(nxt.logits).all()


def test_layer_types_follow_the_kept_blocks():
    model = tiny_model("qwen2")
    model.config.layer_types = ["full_attention", "sliding_attention", "full_attention"]
    pruned = apply(model, C.uniform(keep_blocks=(1,)))
    assert pruned.config.layer_types == ["sliding_attention"]


@pytest.mark.parametrize("family,blocks", [("gpt2", "transformer.h"), ("bert", "encoder.layer")])
def test_other_families(family, blocks):
    model = tiny_model(family)
    pruned = apply(model, C.uniform(keep_blocks=(2,)))
    assert len(pruned.get_submodule(blocks)) == 1
    assert torch.isfinite(outputs(pruned, token_batch())).all()


def test_block_past_the_last_is_refused():
    with pytest.raises(RecipeError, match="past the last one"):
        apply(tiny_model("bert"), C.uniform(keep_blocks=(0, 3)))
