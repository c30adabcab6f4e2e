import pytest
import torch

from search.compress import apply
from search.compress.modules import QuantizedLinear, SparseLinear
from search.compress.registry import LAYER_TRANSFORMS, MODEL_TRANSFORMS, ORDER, transform
from search.errors import RecipeError
from search.recipe import CompressionConfig as C
from search.recipe import parse_recipe
from tests.compress.helpers import outputs, tiny_model, token_batch


def test_transforms_are_registered_by_name_in_the_documented_order():
    for name in ORDER:
        assert callable(transform(name))
    assert ORDER == ("depth", "width", "lowrank", "sparsity", "quantize")
    assert set(MODEL_TRANSFORMS) >= {"depth", "width"} and set(LAYER_TRANSFORMS) >= {"lowrank", "sparsity", "quantize"}


def test_input_untouched_and_result_bfloat16():
    model = tiny_model("gpt2")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    compressed = apply(model, C.uniform(bits=4, sparsity=0.5, sparsity_pattern="2:4", width=0.5))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert type(model.transformer.h[0].attn.c_attn).__name__ == "Conv1D"
    assert all(p.dtype == torch.bfloat16 for p in compressed.parameters())
    assert isinstance(compressed.transformer.h[0].attn.c_attn, QuantizedLinear)
    assert compressed.lm_head.weight is compressed.transformer.wte.weight  # still tied


def test_package_apply_stays_the_function_after_the_implementation_is_imported():
    import search.compress.compose  # noqa: F401 - the implementation module has its own name

    assert callable(search.compress.apply)
    assert isinstance(search.compress.apply(tiny_model("bert"), C.uniform(bits=8)), torch.nn.Module)


def test_storage_dtypes_survive_casts():
    compressed = apply(tiny_model("bert"), C.uniform(bits=4))
    ids = token_batch()
    ref = outputs(compressed, ids)
    compressed.to(torch.bfloat16).half().to(torch.bfloat16)
    q = compressed.encoder.layer[0].attention.self.query
    assert q.scales.dtype == torch.float16 and q.qweight.dtype == torch.uint8
    assert torch.equal(outputs(compressed, ids), ref)


def test_mixed_recipe_picks_module_types_per_layer():
    recipe = parse_recipe({"layers": {
        "_default": {"bits": 8},
        "re:mlp": {"bits": 16, "sparsity": 0.5},
        "model.layers.0.self_attn.q_proj": {"bits": 16, "rank": 4},
    }})
    compressed = apply(tiny_model("llama"), recipe)
    block = compressed.model.layers[0]
    assert isinstance(block.self_attn.k_proj, QuantizedLinear)
    assert isinstance(block.mlp.up_proj, SparseLinear) and block.mlp.up_proj.fmt == "bitmask"
    assert type(block.self_attn.q_proj).__name__ == "LowRankLinear"
    assert type(block.self_attn.q_proj.a) is torch.nn.Linear


def test_bad_recipes_are_one_line_errors():
    model = tiny_model("llama")
    with pytest.raises(RecipeError, match="does not have"):
        apply(model, parse_recipe({"layers": {"model.layers.9.mlp.up_proj": {"bits": 4}}}))
    with pytest.raises(RecipeError, match="matches no layer"):
        apply(model, parse_recipe({"layers": {"re:nothing_like_this": {"bits": 4}}}))
    with pytest.raises(RecipeError, match="exceeds its full rank"):
        apply(model, C.uniform(rank=100))


@pytest.mark.parametrize("family", ["llama", "qwen2", "gpt2", "bert"])
def test_every_family_every_method_runs(family):
    recipe = C.uniform(bits=4, group_size=16, sparsity=0.5, sparsity_pattern="2:4", sparsity_score="wanda",
                       rank=0.5, width=0.5, heads=0.5, keep_blocks=(0, 2))
    out = outputs(apply(tiny_model(family), recipe, calibration=token_batch(4, 16)), token_batch())
    assert torch.isfinite(out).all()
