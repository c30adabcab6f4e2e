"""GGUF files run by llama.cpp give the torch model's logits (Llama, Qwen2; dense, quantized, pruned).

llama-cpp-python is part of the test extra: these tests fail, not skip, without it.
"""

from __future__ import annotations

import llama_cpp  # noqa: F401 - a missing runtime must fail the suite, never skip it
import pytest

from search.compress import apply
from search.models import ByteTokenizer
from search.recipe import CompressionConfig
from search.runtimes.gguf_writer import write_gguf
from tests.runtimes.tiny_models import (
    llamacpp_logits,
    mean_kl,
    round_linear_inputs,
    tiny_causal,
    token_rows,
    torch_logits,
    with_gguf_rounded_weights,
)


@pytest.mark.parametrize("model_type", ["llama", "qwen2"])
@pytest.mark.parametrize("dense_type", ["F32", "F16", "BF16"])
def test_dense_gguf_matches_torch(tmp_path, model_type, dense_type):
    model = tiny_causal(model_type)
    rows = token_rows()
    path = write_gguf(model, ByteTokenizer(256), None, tmp_path / "m.gguf", dense_type=dense_type)
    reference = torch_logits(with_gguf_rounded_weights(model, dense_type) if dense_type != "F32" else model, rows)
    kl = mean_kl(reference, llamacpp_logits(path, rows))
    assert kl < 1e-3, f"{model_type} {dense_type}: KL(torch || llama.cpp) = {kl:.2e}"
    # and a real difference would show: the same file against another random model
    other = torch_logits(tiny_causal(model_type, seed=7), rows)
    assert mean_kl(other, llamacpp_logits(path, rows)) > 100 * max(kl, 1e-6)


@pytest.mark.parametrize("model_type", ["llama", "qwen2"])
@pytest.mark.parametrize("ggml_type", ["Q8_0", "Q4_0"])
def test_quantized_gguf_scores_like_the_torch_model_with_its_weights(tmp_path, model_type, ggml_type):
    """llama.cpp's KL to the original equals the KL of the torch model with the same GGUF weights (within 2%)
    once the torch model also rounds activations as llama.cpp does (8-bit blocks of 32 for these types);
    without that rounding 4-bit weights still agree within 2%, 8-bit weights do not (see activation_rounding)."""
    teacher = tiny_causal(model_type)
    rows = token_rows(16, 64)  # 1024 positions: the two roundings' KLs settle to within ~1%
    path = write_gguf(teacher, ByteTokenizer(256), None, tmp_path / "q.gguf", weight_type=ggml_type)
    t_logits = torch_logits(teacher, rows)
    twin = with_gguf_rounded_weights(teacher, ggml_type)
    weights_only_kl = mean_kl(t_logits, torch_logits(twin, rows))
    torch_kl = mean_kl(t_logits, torch_logits(round_linear_inputs(twin, ggml_type), rows))
    cpp_kl = mean_kl(t_logits, llamacpp_logits(path, rows))
    assert weights_only_kl > 1e-4  # the quantization error is real, so "within 2%" means something
    assert abs(cpp_kl - torch_kl) <= 0.02 * torch_kl, f"{ggml_type}: llama.cpp {cpp_kl:.5f} vs torch {torch_kl:.5f}"
    if ggml_type == "Q4_0":
        assert abs(cpp_kl - weights_only_kl) <= 0.02 * weights_only_kl


@pytest.mark.parametrize("model_type", ["llama", "qwen2"])
def test_width_and_depth_pruned_model_exports_and_runs(tmp_path, model_type):
    model = tiny_causal(model_type, num_hidden_layers=3)
    recipe = CompressionConfig.uniform(width=0.5, heads=0.5, keep_blocks=(0, 2))
    small = apply(model, recipe)  # bfloat16, 2 of 4 heads, half the MLP, 2 of 3 blocks
    rows = token_rows()
    path = write_gguf(small, ByteTokenizer(256), recipe, tmp_path / "s.gguf")
    kl = mean_kl(torch_logits(small.float(), rows), llamacpp_logits(path, rows))
    assert kl < 1e-3, f"pruned {model_type}: KL(torch || llama.cpp) = {kl:.2e}"


@pytest.mark.parametrize("fmt", ["Q8_0", "Q4_0", "Q6_K", "Q4_K"])
def test_recipe_format_candidate_runs_in_llamacpp_as_scored(tmp_path, fmt):
    """A candidate built with GGUF formats (GgufLinear, compressed embedding) is shipped byte for byte:
    llama.cpp's KL to the original equals the torch candidate's within 2% (activations rounded as llama.cpp
    rounds them: without that, Q8_0 and Q6_K score ~70% / ~17% better in torch than they run)."""
    import gguf
    import numpy as np

    from search.recipe import parse_recipe

    teacher = tiny_causal("llama", hidden_size=256, intermediate_size=256)  # K-quant rows: 256 weights
    recipe = parse_recipe({"layers": {"_default": {"format": fmt}}, "embedding": {"format": fmt}})
    candidate = apply(teacher, recipe)
    path = write_gguf(candidate, ByteTokenizer(256), recipe, tmp_path / f"{fmt}.gguf")
    tensors = {t.name: t for t in gguf.GGUFReader(str(path)).tensors}
    down = candidate.model.layers[1].mlp.down_proj
    assert tensors["blk.1.ffn_down.weight"].tensor_type.name == down.ggml_type == fmt
    np.testing.assert_array_equal(np.asarray(tensors["blk.1.ffn_down.weight"].data), down.blocks.numpy())
    assert tensors["token_embd.weight"].tensor_type.name == fmt

    rows = token_rows(16, 64)
    t_logits = torch_logits(teacher, rows)
    reference = candidate.float()  # GgufLinear rounds its inputs as llama.cpp does
    torch_kl = mean_kl(t_logits, torch_logits(reference, rows))
    cpp_kl = mean_kl(t_logits, llamacpp_logits(path, rows))
    assert torch_kl > 1e-4
    assert abs(cpp_kl - torch_kl) <= 0.02 * torch_kl, f"{fmt}: llama.cpp {cpp_kl:.5f} vs torch {torch_kl:.5f}"


def test_gpt2_dense_and_pruned_ggufs_match_torch(tmp_path):
    import torch

    from search.models import build_from_config
    from tests.conftest import tiny_config

    model = build_from_config(tiny_config("gpt2", n_inner=128, initializer_range=0.15)).float()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    rows = token_rows(vocab=384)
    dense = write_gguf(model, ByteTokenizer(384), None, tmp_path / "g.gguf", dense_type="F32")  # Conv1D weights
    assert mean_kl(torch_logits(model, rows), llamacpp_logits(dense, rows)) < 1e-4
    recipe = CompressionConfig.uniform(width=0.5, keep_blocks=(0, 2))
    small = apply(model, recipe)
    pruned = write_gguf(small, ByteTokenizer(384), recipe, tmp_path / "s.gguf")
    assert mean_kl(torch_logits(small.float(), rows), llamacpp_logits(pruned, rows)) < 1e-3
    with pytest.raises(Exception, match="needs all attention heads"):
        write_gguf(apply(model, CompressionConfig.uniform(heads=0.5)), ByteTokenizer(384), None, tmp_path / "h.gguf")
