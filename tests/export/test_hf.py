"""--format hf: plain transformers loads the export and computes what devicefit's model computes.

The reference is devicefit's compressed model exactly as the search scores it (bfloat16). A quantized
export must also hold devicefit's exact numbers: the weights compressed-tensors reconstructs equal
devicefit's dequantized weights bit for bit (the export's config loads in float32, which holds the
float16 scales exactly).
"""

import json
import os
import subprocess
import sys

import pytest
import torch
import transformers
from safetensors.torch import load_file

from search.compress import apply
from search.compress.modules import PackedLinear
from search.errors import DeviceFitError
from search.exporters import export_model
from search.recipe import CompressionConfig as C
from search.recipe import parse_recipe
from tests.export.helpers import kl, logits, mean_pooled, tiny_loaded

MAX_KL = 1e-3


def _export(loaded, recipe, out, fmt="hf"):
    compressed = apply(loaded.model, recipe)
    export_model(loaded, compressed, recipe, out, fmt)
    return compressed


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_width_pruned_model_is_a_smaller_standard_checkpoint(tmp_path, family):
    loaded = tiny_loaded(family)
    recipe = C.uniform(width=0.5, heads=0.5, keep_blocks=(0, 2))
    compressed = _export(loaded, recipe, tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert (config["intermediate_size"], config["num_attention_heads"], config["num_key_value_heads"],
            config["num_hidden_layers"]) == (88, 2, 1, 2)
    assert "quantization_config" not in config
    stored = load_file(str(tmp_path / "hf" / "model.safetensors"))
    assert ("lm_head.weight" in stored) == (family == "llama")  # Qwen2's tied head is stored once
    plain = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    assert plain.dtype == torch.bfloat16
    assert kl(logits(compressed), logits(plain)) < 1e-7  # the same bf16 weights and shapes: the same model


@pytest.mark.parametrize("family", ["llama", "qwen2"])
@pytest.mark.parametrize("recipe", [
    C.uniform(bits=4, group_size=32),  # asymmetric, 176 = 5.5 groups: a partial last group
    C.uniform(bits=8, group_size=32, symmetric=True),
    C.uniform(bits=4, group_size=None, symmetric=True, sparsity=0.25, sparsity_pattern="channel"),
    C.uniform(bits=3, group_size=16, sparsity=0.5, sparsity_pattern="2:4", width=0.75),
], ids=["4bit-asym", "8bit-sym", "4bit-rows", "3bit-2:4-width"])
def test_quantized_export_holds_devicefit_numbers(tmp_path, family, recipe):
    loaded = tiny_loaded(family)
    compressed = _export(loaded, recipe, tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["quantization_config"]["format"] == "pack-quantized"
    plain = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    assert kl(logits(compressed), logits(plain)) < MAX_KL  # the first forward also decompresses the weights
    packed = {n: m for n, m in compressed.named_modules() if isinstance(m, PackedLinear)}
    assert packed
    for name, module in packed.items():  # same codes, scales and zero points: the same weights exactly
        assert torch.equal(plain.get_submodule(name).weight.float(), module.dense_weight(torch.float32)), name


def test_low_rank_is_merged_to_dense(tmp_path):
    loaded = tiny_loaded("llama")
    recipe = C.uniform(bits=8, rank=0.5)
    compressed = _export(loaded, recipe, tmp_path / "hf")
    plain = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    assert isinstance(plain.model.layers[0].mlp.down_proj, torch.nn.Linear)
    assert kl(logits(compressed), logits(plain)) < MAX_KL
    record = json.loads((tmp_path / "hf" / "devicefit_export.json").read_text())
    assert any("merged" in note for note in record["notes"])
    assert parse_recipe(record["recipe"]) == recipe


def test_gguf_typed_layers_become_exact_symmetric_groups(tmp_path):
    loaded = tiny_loaded("llama", intermediate_size=192)
    recipe = parse_recipe({"layers": {"_default": {"format": "Q4_0"}, "re:mlp\\.down": {"format": "Q8_0"},
                                      "re:self_attn\\.o": {"format": "Q5_0"}}})
    compressed = _export(loaded, recipe, tmp_path / "hf")
    plain = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    assert kl(logits(compressed), logits(plain)) < MAX_KL  # the first forward also decompresses the weights
    gguf_layers = {n: m for n, m in compressed.named_modules() if hasattr(m, "ggml_type")}
    assert len(gguf_layers) == 29
    for name, module in gguf_layers.items():
        assert torch.equal(plain.get_submodule(name).weight.float(), module.dense_weight(torch.float32)), name


def test_what_hf_cannot_express_is_refused(tmp_path):
    llama = tiny_loaded("llama", intermediate_size=192)
    q4_1 = parse_recipe({"layers": {"_default": {"format": "Q4_1"}}})
    with pytest.raises(DeviceFitError, match="cannot express .*Q4_1.*--format gguf"):
        _export(llama, q4_1, tmp_path / "a")
    bert = tiny_loaded("bert")
    with pytest.raises(DeviceFitError, match="cannot express this candidate.*--format devicefit"):
        _export(bert, C.uniform(heads=0.5), tmp_path / "b")
    gpt2 = tiny_loaded("gpt2")
    with pytest.raises(DeviceFitError, match="Conv1D.*--format devicefit"):
        _export(gpt2, C.uniform(bits=4), tmp_path / "c")
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_gpt2_dense_export_keeps_conv1d_layout(tmp_path):
    loaded = tiny_loaded("gpt2")
    recipe = C.uniform(width=0.5, sparsity=0.5)
    compressed = _export(loaded, recipe, tmp_path / "hf")
    plain = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    assert plain.config.n_inner == compressed.config.n_inner
    assert kl(logits(compressed), logits(plain)) < 1e-7


def test_minilm_loads_with_automodel(tmp_path, minilm):
    recipe = C.uniform(bits=8, width=0.5)
    compressed = _export(minilm, recipe, tmp_path / "hf")
    plain = transformers.AutoModel.from_pretrained(tmp_path / "hf")
    source_pooler = load_file(str(minilm.source_dir / "model.safetensors"))["pooler.dense.weight"]
    assert torch.equal(plain.pooler.dense.weight, source_pooler.to(torch.bfloat16))  # not a random pooler
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    batch = tokenizer(["compression for small devices", "the quick brown fox"], padding=True, return_tensors="pt")
    cosine = torch.nn.functional.cosine_similarity(mean_pooled(compressed, batch), mean_pooled(plain, batch))
    assert float(cosine.min()) > 0.9999
    assert (tmp_path / "hf" / "modules.json").is_file()  # sentence-transformers' pooling files came along


@pytest.mark.slow  # a second Python importing torch and transformers: ~20 s on a busy 2-core machine
def test_a_fresh_python_loads_it_without_devicefit(tmp_path):
    """The user's view: only transformers (and compressed-tensors) imported, never devicefit."""
    loaded = tiny_loaded("qwen2")
    recipe = C.uniform(bits=4, group_size=32, width=0.5)
    compressed = _export(loaded, recipe, tmp_path / "hf")
    ids = torch.randint(0, 384, (1, 16), generator=torch.Generator().manual_seed(3))
    torch.save(ids, tmp_path / "ids.pt")
    script = (
        "import sys, torch, transformers\n"
        f"m = transformers.AutoModelForCausalLM.from_pretrained({str(tmp_path / 'hf')!r})\n"
        f"ids = torch.load({str(tmp_path / 'ids.pt')!r})\n"
        f"torch.save(m(input_ids=ids).logits.detach().float(), {str(tmp_path / 'out.pt')!r})\n"
        "assert not any(n == 'search' or n.startswith('search.') for n in sys.modules), 'devicefit was imported'\n")
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, env=env, timeout=300)
    assert kl(logits(compressed, ids), torch.load(tmp_path / "out.pt")) < MAX_KL


def test_compressed_token_embeddings_are_stored_dense_with_a_note(tmp_path):
    loaded = tiny_loaded("qwen2", intermediate_size=192)  # tied head: it follows the embedding table
    recipe = parse_recipe({"layers": {"_default": {"bits": 4, "group_size": 32}}, "embedding": {"format": "Q8_0"}})
    compressed = _export(loaded, recipe, tmp_path / "hf")
    assert type(compressed.model.embed_tokens).__name__ == "QuantizedEmbedding"
    plain = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    assert kl(logits(compressed), logits(plain)) < MAX_KL
    table = compressed.model.embed_tokens.table.dense_weight(torch.float32)
    assert torch.equal(plain.model.embed_tokens.weight, table.to(torch.bfloat16).float())
    notes = json.loads((tmp_path / "hf" / "devicefit_export.json").read_text())["notes"]
    assert any("token embeddings are stored dense" in note for note in notes)


def test_gguf_float_layers_keep_their_exact_values_in_gpt2_layout(tmp_path):
    """F16 layers are stored as float32 values (not rounded to bf16), transposed for GPT-2's Conv1D
    (c_proj is square: the layout must come from the module type, not the shape)."""
    loaded = tiny_loaded("gpt2")
    recipe = parse_recipe({"layers": {"_default": {"format": "F16"}}})
    compressed = _export(loaded, recipe, tmp_path / "hf")
    plain = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    assert kl(logits(compressed), logits(plain)) < 1e-5
    proj = compressed.transformer.h[0].attn.c_proj
    assert torch.equal(plain.transformer.h[0].attn.c_proj.weight.t(), proj.dense_weight(torch.float32))
