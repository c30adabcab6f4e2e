"""Export and reload of the newer families: the structure (fused slices, dropped local/global blocks) is rebuilt
from the original config and gives identical outputs at the predicted size."""

import json

import pytest
import torch
import transformers

from search.compress import apply
from search.exporters import export_model
from search.models import ByteTokenizer, LoadedModel
from search.recipe import CompressionConfig as C
from search.space.graph import graph_from_model
from tests.compress.helpers import outputs, token_batch
from tests.compress.test_export import _check_round_trip
from tests.families.configs import NEW_FAMILIES, family_model


@pytest.mark.parametrize("model_type,recipe", [
    ("gemma2", C.uniform(bits=4, group_size=32, width=0.5, heads=0.5, keep_blocks=(1, 2))),
    ("gemma3_text", C.uniform(bits=3, group_size=16, sparsity=0.5, sparsity_pattern="2:4", keep_blocks=(0, 3))),
    ("qwen3", C.uniform(bits=5, symmetric=True, rank=0.5, heads=0.5)),
    ("phi3", C.uniform(bits=4, group_size=32, width=0.5, heads=0.5, keep_blocks=(0, 2))),
    ("mistral", C.uniform(sparsity=0.25, sparsity_pattern="channel", width=0.75)),
])
def test_round_trip_identical_outputs(tmp_path, model_type, recipe):
    model = family_model(model_type)
    loaded = LoadedModel(ref=f"tiny-{model_type}", model=model, tokenizer=ByteTokenizer(384),
                         graph=graph_from_model(model))
    reloaded = _check_round_trip(loaded, recipe, tmp_path / "export", token_batch(2, 16))
    assert reloaded.model.config.num_hidden_layers == len(recipe.keep_blocks or range(model.config.num_hidden_layers))


@pytest.mark.parametrize("model_type", NEW_FAMILIES)
def test_width_and_depth_pruned_hf_export_is_a_standard_checkpoint(tmp_path, model_type):
    """--format hf: plain transformers loads the smaller model (fused Phi-3 slices, Gemma's local/global
    pattern of the kept blocks) and computes what devicefit's pruned model computes."""
    model = family_model(model_type)
    loaded = LoadedModel(ref=f"tiny-{model_type}", model=model, tokenizer=ByteTokenizer(384),
                         graph=graph_from_model(model))
    recipe = C.uniform(width=0.5, heads=0.5, keep_blocks=(0, 2))
    compressed = apply(model, recipe)
    export_model(loaded, compressed, recipe, tmp_path / "hf", "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert (config["intermediate_size"], config["num_attention_heads"], config["num_key_value_heads"],
            config["num_hidden_layers"]) == (88, 2, 1, 2)
    plain = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    ids = token_batch(2, 16)
    assert torch.equal(outputs(plain, ids), outputs(compressed, ids))
