"""Recipes with GGUF formats through apply() and the devicefit export: the built model holds the GGUF
bytes, a tied head shares the compressed embedding, and an export reloads to identical outputs."""

import pytest
import torch
import torch.nn.functional as F

from search.compress import apply
from search.compress.export import export_compressed
from search.compress.gguf_linear import GgufLinear
from search.compress.table_embedding import QuantizedEmbedding
from search.formats.activation_rounding import rounding_for
from search.formats.codec import dequantize_rows, quantize_rows
from search.memory import memory_report, model_bytes
from search.models import ByteTokenizer, LoadedModel, load_model
from search.recipe import parse_recipe
from search.space.graph import graph_from_model
from tests.compress.helpers import outputs, tiny_model, token_batch

K_RECIPE = parse_recipe({"layers": {"_default": {"format": "Q4_K"}, "re:down_proj": {"format": "Q6_K"},
                                    "lm_head": {"format": "Q6_K"}},
                         "embedding": {"format": "Q4_K"}})


def _loaded(family, **overrides) -> LoadedModel:
    model = tiny_model(family, **overrides)
    return LoadedModel(ref=f"tiny-{family}", model=model, tokenizer=ByteTokenizer(384), graph=graph_from_model(model))


def test_layers_hold_the_bytes_of_their_original_weights():
    model = tiny_model("llama", hidden_size=256, intermediate_size=256, num_hidden_layers=1)
    built = apply(model, K_RECIPE)
    down = built.model.layers[0].mlp.down_proj
    assert isinstance(down, GgufLinear) and down.ggml_type == "Q6_K"
    original = model.model.layers[0].mlp.down_proj.weight.detach().float().numpy()
    assert torch.equal(down.blocks, torch.from_numpy(quantize_rows(original, "Q6_K")))
    assert isinstance(built.lm_head, GgufLinear) and built.lm_head.ggml_type == "Q6_K"
    emb = built.get_input_embeddings()
    assert isinstance(emb, QuantizedEmbedding) and emb.ggml_type == "Q4_K"
    ids = token_batch()
    table = torch.from_numpy(dequantize_rows(emb.table.blocks.numpy(), "Q4_K"))
    assert torch.equal(emb(ids), table[ids].to(torch.bfloat16))


def test_tied_head_shares_the_compressed_embedding():
    model = tiny_model("qwen2", intermediate_size=192)  # tie_word_embeddings=True
    recipe = parse_recipe({"layers": {"_default": {"format": "Q8_0"}}, "embedding": {"format": "Q5_0"}})
    built = apply(model, recipe)
    table = built.get_input_embeddings().table
    assert built.lm_head is table and table.ggml_type == "Q5_0"
    hidden = torch.randn(2, 5, 64, dtype=torch.bfloat16)
    weight = torch.from_numpy(dequantize_rows(table.blocks.numpy(), "Q5_0"))
    rounded = rounding_for("Q5_0")(hidden)  # the head's input, rounded as llama.cpp rounds it for Q5_0
    assert torch.equal(built.lm_head(hidden), F.linear(rounded, weight.to(torch.bfloat16)))
    assert model_bytes(built) == memory_report(graph_from_model(model), recipe).total_bytes


@pytest.mark.parametrize(("family", "overrides", "recipe"), [
    ("llama", dict(hidden_size=256, intermediate_size=256, num_hidden_layers=1), K_RECIPE),
    ("qwen2", dict(intermediate_size=192), parse_recipe({
        "layers": {"_default": {"format": "Q4_0"}, "re:v_proj": {"format": "F16"}}, "embedding": {"format": "Q8_0"},
        "width": {"mlp": 0.5}})),
    ("bert", dict(intermediate_size=192), parse_recipe({
        "layers": {"_default": {"format": "Q5_1"}}, "embedding": {"bits": 4, "group_size": 32}})),
])
def test_export_round_trip_of_format_recipes(tmp_path, family, overrides, recipe):
    loaded = _loaded(family, **overrides)
    compressed = apply(loaded.model, recipe)
    out = export_compressed(loaded, compressed, recipe, tmp_path / "export")
    reloaded = load_model(str(out))
    ids = token_batch()
    assert torch.equal(outputs(reloaded.model, ids), outputs(compressed, ids))
    assert model_bytes(reloaded.model) == memory_report(loaded.graph, recipe).total_bytes
    blocks = {n: b for n, b in reloaded.model.named_buffers() if n.endswith("blocks")}
    assert blocks and all(torch.equal(b, compressed.get_buffer(n)) for n, b in blocks.items())
