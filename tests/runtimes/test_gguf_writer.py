"""write_gguf without llama.cpp: names, shapes, tensor bytes, the q/k row order, atomic writes."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
import torch
from torch import nn

from search.compress import apply
from search.errors import ModelError
from search.models import ByteTokenizer
from search.recipe import CompressionConfig
from search.runtimes import gguf_writer
from search.runtimes.gguf_names import pair_rotary_rows
from search.runtimes.gguf_tokenizer import byte_to_char
from search.runtimes.gguf_writer import write_gguf
from tests.runtimes.tiny_models import tiny_causal


def _read(path):
    reader = gguf.GGUFReader(str(path))
    fields = {}
    for name, f in reader.fields.items():
        if f.types and f.types[0] == gguf.GGUFValueType.STRING:
            fields[name] = bytes(f.parts[f.data[0]]).decode()
        elif f.types and f.types[0] != gguf.GGUFValueType.ARRAY:
            fields[name] = f.parts[f.data[0]][0].item()
    return reader, fields, {t.name: t for t in reader.tensors}


def _values(t) -> np.ndarray:
    """A tensor's values as float32 [rows, cols] (llama.cpp's shape is reversed in the reader)."""
    data = gguf.quants.dequantize(t.data, t.tensor_type)
    return np.asarray(data, dtype=np.float32).reshape(tuple(int(d) for d in reversed(t.shape)))


def test_llama_metadata_names_and_types(tmp_path):
    model = tiny_causal("llama")
    path = write_gguf(model, ByteTokenizer(256), None, tmp_path / "m.gguf", source="some/model")
    _, fields, tensors = _read(path)
    assert fields["general.architecture"] == "llama"
    assert fields["devicefit.source"] == "some/model"
    assert (fields["llama.block_count"], fields["llama.attention.head_count"],
            fields["llama.attention.head_count_kv"], fields["llama.feed_forward_length"],
            fields["llama.embedding_length"], fields["llama.rope.dimension_count"]) == (2, 4, 2, 128, 64, 16)
    assert tensors["token_embd.weight"].tensor_type.name == "F16"
    assert tensors["blk.1.ffn_down.weight"].tensor_type.name == "F16"
    assert tensors["blk.0.attn_norm.weight"].tensor_type.name == "F32"
    assert "output.weight" in tensors and len(tensors) == 2 + 2 * 9 + 1


def test_tied_head_is_not_written_twice(tmp_path):
    model = tiny_causal("qwen2", tie_word_embeddings=True)
    _, _, tensors = _read(write_gguf(model, ByteTokenizer(256), None, tmp_path / "q.gguf"))
    assert "output.weight" not in tensors
    assert tensors["blk.0.attn_q.bias"].tensor_type.name == "F32"  # Qwen2's q/k/v biases


def _rope_half(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Hugging Face rotation: dimension i pairs with i + d/2."""
    h = len(x) // 2
    cos, sin = np.cos(np.concatenate([theta, theta])), np.sin(np.concatenate([theta, theta]))
    rotated = np.concatenate([-x[h:], x[:h]])
    return x * cos + rotated * sin


def _rope_pairs(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """llama.cpp 'normal' rotation: dimensions 2i and 2i+1 form a pair."""
    out = x.copy()
    out[0::2] = x[0::2] * np.cos(theta) - x[1::2] * np.sin(theta)
    out[1::2] = x[0::2] * np.sin(theta) + x[1::2] * np.cos(theta)
    return out


def test_pair_rotary_rows_turns_half_rotation_into_pair_rotation():
    rng = np.random.default_rng(0)
    d, heads = 8, 3
    theta = rng.uniform(0, 3, d // 2)
    q = rng.normal(size=heads * d)
    hf = np.concatenate([_rope_half(q[h * d:(h + 1) * d], theta) for h in range(heads)])
    permuted = pair_rotary_rows(q, heads)
    cpp = np.concatenate([_rope_pairs(permuted[h * d:(h + 1) * d], theta) for h in range(heads)])
    np.testing.assert_allclose(cpp, pair_rotary_rows(hf, heads), atol=1e-12)
    assert not np.allclose(permuted, q)


def test_llama_q_k_rows_are_reordered_and_qwen2_rows_are_not(tmp_path):
    for model_type, reorder in (("llama", True), ("qwen2", False)):
        model = tiny_causal(model_type)
        _, _, tensors = _read(write_gguf(model, ByteTokenizer(256), None, tmp_path / f"{model_type}.gguf",
                                         dense_type="F32"))
        attn = model.model.layers[0].self_attn
        q, k, v = (m.weight.detach().numpy() for m in (attn.q_proj, attn.k_proj, attn.v_proj))
        expect_q = pair_rotary_rows(q, 4) if reorder else q
        expect_k = pair_rotary_rows(k, 2) if reorder else k
        np.testing.assert_array_equal(_values(tensors["blk.0.attn_q.weight"]), expect_q)
        np.testing.assert_array_equal(_values(tensors["blk.0.attn_k.weight"]), expect_k)
        np.testing.assert_array_equal(_values(tensors["blk.0.attn_v.weight"]), v)


def test_pruned_model_metadata_follows_its_real_shapes(tmp_path):
    model = tiny_causal("llama", num_hidden_layers=3)
    recipe = CompressionConfig.uniform(width=0.5, heads=0.5, keep_blocks=(0, 2))
    small = apply(model, recipe)
    _, fields, tensors = _read(write_gguf(small, ByteTokenizer(256), recipe, tmp_path / "s.gguf"))
    assert (fields["llama.block_count"], fields["llama.attention.head_count"],
            fields["llama.attention.head_count_kv"], fields["llama.feed_forward_length"],
            fields["llama.attention.key_length"]) == (2, 2, 1, 64, 16)
    assert tensors["blk.1.attn_q.weight"].tensor_type.name == "BF16"  # the compressed model is bfloat16
    assert "blk.2.attn_q.weight" not in tensors
    assert CompressionConfig.model_validate_json(fields["devicefit.recipe"]) == recipe


def test_package_quantized_bytes_are_gguf_quants_bytes(tmp_path):
    model = tiny_causal("llama")
    _, _, tensors = _read(write_gguf(model, ByteTokenizer(256), None, tmp_path / "q8.gguf", weight_type="Q8_0"))
    t = tensors["blk.0.ffn_up.weight"]
    w = model.model.layers[0].mlp.up_proj.weight.detach().numpy()
    assert t.tensor_type.name == "Q8_0"
    np.testing.assert_array_equal(np.asarray(t.data), gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q8_0))


class _PackedStandIn(nn.Module):  # the interface only: no forward needed
    """The GgufLinear interface the writer relies on: ggml_type, in/out features, uint8 blocks, bias."""

    def __init__(self, weight: torch.Tensor, ggml_type: str):
        super().__init__()
        self.ggml_type, self.out_features, self.in_features = ggml_type, *weight.shape
        qtype = getattr(gguf.GGMLQuantizationType, ggml_type)
        self.register_buffer("blocks", torch.from_numpy(gguf.quants.quantize(weight.float().numpy(), qtype)))
        self.bias = None


def test_packed_module_bytes_are_written_unchanged(tmp_path):
    model = tiny_causal("llama")
    layer = model.model.layers[1]
    layer.mlp.down_proj = _PackedStandIn(layer.mlp.down_proj.weight.detach(), "Q4_0")
    layer.self_attn.q_proj = _PackedStandIn(layer.self_attn.q_proj.weight.detach(), "Q8_0")
    _, _, tensors = _read(write_gguf(model, ByteTokenizer(256), None, tmp_path / "p.gguf"))
    down, q = tensors["blk.1.ffn_down.weight"], tensors["blk.1.attn_q.weight"]
    assert (down.tensor_type.name, q.tensor_type.name) == ("Q4_0", "Q8_0")
    np.testing.assert_array_equal(np.asarray(down.data), layer.mlp.down_proj.blocks.numpy())
    # q rows move whole (llama.cpp's rotation order); each row's bytes stay as they were
    np.testing.assert_array_equal(np.asarray(q.data), pair_rotary_rows(layer.self_attn.q_proj.blocks.numpy(), 4))


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"previous")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(gguf_writer, "write_tokenizer", broken)
    with pytest.raises(RuntimeError):
        write_gguf(tiny_causal("llama"), ByteTokenizer(256), None, path)
    assert path.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gguf"]


def test_bad_requests_are_one_line_errors(tmp_path):
    with pytest.raises(ModelError, match="K-quants"):
        write_gguf(tiny_causal("llama"), ByteTokenizer(256), None, tmp_path / "x.gguf", weight_type="Q4_K")
    with pytest.raises(ModelError, match="multiple of 32"):
        write_gguf(tiny_causal("llama", intermediate_size=100), ByteTokenizer(256), None, tmp_path / "y.gguf",
                   weight_type="Q4_0")
    from search.runtimes.gguf_names import gguf_family

    with pytest.raises(ModelError, match="GGUF export supports"):
        gguf_family("mamba")
    assert not list(tmp_path.iterdir())


def test_byte_table_is_gpt2s():
    table = byte_to_char()
    assert len(set(table.values())) == 256
    assert (table[ord("a")], table[32], table[10], table[0]) == ("a", "\u0120", "\u010a", "\u0100")


def test_recipe_formats_and_tied_compressed_embedding_are_written_as_built(tmp_path):
    from search.recipe import parse_recipe

    model = tiny_causal("qwen2", tie_word_embeddings=True)
    recipe = parse_recipe({"layers": {"_default": {"format": "Q4_0"}, "re:v_proj": {"format": "Q8_0"}},
                           "embedding": {"format": "Q8_0"}})
    candidate = apply(model, recipe)
    _, _, tensors = _read(write_gguf(candidate, ByteTokenizer(256), recipe, tmp_path / "c.gguf"))
    table = candidate.model.embed_tokens.table
    assert candidate.lm_head is table  # one table for both ends
    assert "output.weight" not in tensors
    assert tensors["token_embd.weight"].tensor_type.name == "Q8_0"
    np.testing.assert_array_equal(np.asarray(tensors["token_embd.weight"].data), table.blocks.numpy())
    for name, module in (("blk.0.attn_v.weight", candidate.model.layers[0].self_attn.v_proj),
                         ("blk.1.ffn_gate.weight", candidate.model.layers[1].mlp.gate_proj)):
        assert tensors[name].tensor_type.name == module.ggml_type
        np.testing.assert_array_equal(np.asarray(tensors[name].data), module.blocks.numpy())
    np.testing.assert_array_equal(_values(tensors["blk.0.attn_q.bias"]),
                                  candidate.model.layers[0].self_attn.q_proj.bias.float().numpy())


def test_head_pruned_qwen2_is_written_as_llama_and_head_pruned_bert_is_refused(tmp_path):
    from search.models import build_from_config
    from tests.conftest import tiny_config

    heads = CompressionConfig.uniform(heads=0.5)
    qwen = apply(tiny_causal("qwen2"), heads)
    _, fields, tensors = _read(write_gguf(qwen, ByteTokenizer(256), heads, tmp_path / "q.gguf"))
    assert fields["general.architecture"] == "llama"  # llama.cpp's QWEN2 graph needs heads x size = hidden
    assert fields["llama.attention.head_count"] == 2 and "blk.0.attn_q.bias" in tensors
    bert = apply(build_from_config(tiny_config("bert", intermediate_size=128)), heads)
    with pytest.raises(ModelError, match="needs all attention heads"):
        write_gguf(bert, ByteTokenizer(384), heads, tmp_path / "b.gguf")
