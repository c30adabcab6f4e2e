"""GGUF export of the newer families: llama.cpp runs Mistral (as LLAMA), Qwen3 and Phi-3 with torch's logits.

Each family: a tiny random-init model (tests/runtimes/tiny_models.py, with the family's particularities of
tests/families/configs.py: Mistral's sliding window, Qwen3's explicit head size and per-head q/k norms, tied
embeddings, Phi-3's fused qkv and gate|up with grouped key/value heads), as an F32 file and as a Q8_0 candidate
built by a recipe. Gemma 2 / Gemma 3 also with their sliding windows (shorter than the rows), (1 + w) norms,
Gemma 2's soft-caps; what llama.cpp's Gemma graphs cannot run is refused with a one-line reason.
"""

from __future__ import annotations

import llama_cpp  # noqa: F401 - a missing runtime must fail the suite, never skip it
import pytest

from search.compress import apply
from search.models import ByteTokenizer
from search.recipe import CompressionConfig, parse_recipe
from search.runtimes.gguf_writer import write_gguf
from tests.runtimes.tiny_models import llamacpp_logits, mean_kl, tiny_causal, token_rows, torch_logits

GEMMA = dict(head_dim=24, query_pre_attn_scalar=24, sliding_window=8, tie_word_embeddings=True, num_hidden_layers=4,
             pad_token_id=0, bos_token_id=2, eos_token_id=1)  # head size != hidden / heads, windows < the rows
FAMILY_OVERRIDES = {
    "mistral": dict(sliding_window=None),  # Mistral v0.2+: full attention (the window is tested below)
    "qwen3": dict(head_dim=16, tie_word_embeddings=True, num_hidden_layers=3),
    "phi3": dict(pad_token_id=0, bos_token_id=1, eos_token_id=2, num_hidden_layers=3),
    "gemma2": dict(GEMMA, final_logit_softcapping=30.0, attn_logit_softcapping=50.0),
    "gemma3_text": dict(GEMMA, sliding_window_pattern=2),  # local, global, local, global
}
ARCH = {"mistral": "llama", "qwen3": "qwen3", "phi3": "phi3", "gemma2": "gemma2", "gemma3_text": "gemma3"}
FAMILIES = list(ARCH)


def family_model(model_type: str, seed: int = 0, **overrides):
    return tiny_causal(model_type, seed=seed, **{**FAMILY_OVERRIDES[model_type], **overrides})


def gguf_fields(path) -> dict:
    import gguf

    reader = gguf.GGUFReader(str(path))
    return {"arch": reader.get_field("general.architecture").contents(),
            "tensors": {t.name: t.tensor_type.name for t in reader.tensors},
            "context": reader.get_field(f"{reader.get_field('general.architecture').contents()}.context_length")
            .contents()}


@pytest.mark.parametrize("model_type", FAMILIES)
def test_dense_f32_gguf_matches_torch(tmp_path, model_type):
    model = family_model(model_type)
    rows = token_rows()
    path = write_gguf(model, ByteTokenizer(256), None, tmp_path / "m.gguf", dense_type="F32")
    fields = gguf_fields(path)
    assert fields["arch"] == ARCH[model_type]
    if model_type == "qwen3":
        assert "blk.0.attn_q_norm.weight" in fields["tensors"] and "output.weight" not in fields["tensors"]
    if model_type.startswith("gemma"):  # Gemma's norms multiply by (1 + w): stored as 1 + w
        import gguf
        import numpy as np

        stored = next(t for t in gguf.GGUFReader(str(path)).tensors if t.name == "blk.0.attn_norm.weight")
        np.testing.assert_allclose(np.asarray(stored.data), model.model.layers[0].input_layernorm.weight.detach().numpy() + 1)
    if model_type == "phi3":  # fused tensors, as llama.cpp's PHI3 graph reads them
        assert "blk.0.attn_qkv.weight" in fields["tensors"] and "blk.0.ffn_gate.weight" not in fields["tensors"]
    cpp = llamacpp_logits(path, rows)
    kl = mean_kl(torch_logits(model, rows), cpp)
    print(f"{model_type} F32: KL(torch || llama.cpp) = {kl:.2e}")
    assert kl < 1e-3, f"{model_type} F32: KL(torch || llama.cpp) = {kl:.2e}"
    other = torch_logits(family_model(model_type, seed=7), rows)  # a wrong file would show
    assert mean_kl(other, cpp) > 100 * max(kl, 1e-6)


@pytest.mark.parametrize("model_type", FAMILIES)
def test_q8_0_recipe_candidate_runs_in_llamacpp_as_scored(tmp_path, model_type):
    """The Q8_0 candidate's bytes are shipped as they are: llama.cpp's KL to the original equals the torch
    candidate's (GgufLinear rounds its inputs as llama.cpp does) within 2%."""
    teacher = family_model(model_type)
    recipe = parse_recipe({"layers": {"_default": {"format": "Q8_0"}}})
    candidate = apply(teacher, recipe)
    path = write_gguf(candidate, ByteTokenizer(256), recipe, tmp_path / "q.gguf")
    tensors = gguf_fields(path)["tensors"]
    first = "blk.1.attn_qkv.weight" if model_type == "phi3" else "blk.1.attn_q.weight"
    assert tensors[first] == tensors["blk.1.ffn_down.weight"] == "Q8_0"
    rows = token_rows(16, 64)
    t_logits = torch_logits(teacher, rows)
    torch_kl = mean_kl(t_logits, torch_logits(candidate.float(), rows))
    cpp_kl = mean_kl(t_logits, llamacpp_logits(path, rows))
    print(f"{model_type} Q8_0: KL to the original: torch {torch_kl:.3e}, llama.cpp {cpp_kl:.3e}")
    assert torch_kl > 1e-5  # the quantization error is real, so "within 2%" means something
    assert abs(cpp_kl - torch_kl) <= 0.02 * torch_kl, f"{model_type}: llama.cpp {cpp_kl:.5f} vs torch {torch_kl:.5f}"


def test_mistral_sliding_window_caps_the_context(tmp_path):
    """llama.cpp's LLAMA graph attends to every earlier token: up to the window that is Mistral exactly, and the
    file's context length says where that ends."""
    model = family_model("mistral", sliding_window=8)
    path = write_gguf(model, ByteTokenizer(256), None, tmp_path / "w.gguf", dense_type="F32")
    assert gguf_fields(path)["context"] == 8
    rows = token_rows(4, 8)
    assert mean_kl(torch_logits(model, rows), llamacpp_logits(path, rows)) < 1e-3


def test_pruned_qwen3_gemma3_and_phi3(tmp_path):
    rows = token_rows()
    # Qwen3's graph takes any head count: a head-pruned model runs as QWEN3 itself
    qwen3 = apply(family_model("qwen3"), CompressionConfig.uniform(width=0.5, heads=0.5, keep_blocks=(0, 2)))
    path = write_gguf(qwen3, ByteTokenizer(256), None, tmp_path / "q.gguf")
    assert gguf_fields(path)["arch"] == "qwen3"
    assert mean_kl(torch_logits(qwen3.float(), rows), llamacpp_logits(path, rows)) < 1e-3
    # Gemma 3 likewise; the kept blocks keep their own window kinds (local, then global)
    gemma3 = apply(family_model("gemma3_text"), CompressionConfig.uniform(width=0.5, heads=0.5, keep_blocks=(0, 3)))
    path = write_gguf(gemma3, ByteTokenizer(256), None, tmp_path / "g.gguf")
    assert mean_kl(torch_logits(gemma3.float(), rows), llamacpp_logits(path, rows)) < 1e-3
    # Phi-3: a narrower MLP (fused gate|up sliced in both halves) runs; fewer heads cannot (hidden x hidden output)
    phi3 = family_model("phi3")
    narrow = apply(phi3, CompressionConfig.uniform(width=0.5, keep_blocks=(0, 2)))
    path = write_gguf(narrow, ByteTokenizer(256), None, tmp_path / "p.gguf")
    assert mean_kl(torch_logits(narrow.float(), rows), llamacpp_logits(path, rows)) < 1e-3
    with pytest.raises(Exception, match="needs all attention heads"):
        write_gguf(apply(phi3, CompressionConfig.uniform(heads=0.5)), ByteTokenizer(256), None, tmp_path / "h.gguf")


@pytest.mark.parametrize("model_type", ["gemma2", "gemma3_text"])
def test_gemma_sliding_windows_run_in_llamacpp(tmp_path, model_type):
    """The rows (48 tokens) are longer than the window (8): llama.cpp slides it on the right blocks, and the
    same weights without a window would score far from the file."""
    import copy

    model = family_model(model_type)
    rows = token_rows()
    path = write_gguf(model, ByteTokenizer(256), None, tmp_path / "g.gguf", dense_type="F32")
    cpp = llamacpp_logits(path, rows)
    kl = mean_kl(torch_logits(model, rows), cpp)
    unwindowed = copy.deepcopy(model)
    unwindowed.config.sliding_window = 4096
    assert mean_kl(torch_logits(unwindowed, rows), cpp) > 100 * max(kl, 1e-6)


def test_gemma_exports_llamacpp_cannot_run_are_refused(tmp_path):
    from search.errors import ModelError

    with pytest.raises(ModelError, match="reuses the embedding as the output head"):
        write_gguf(family_model("gemma2", tie_word_embeddings=False), ByteTokenizer(256), None, tmp_path / "a.gguf")
    with pytest.raises(ModelError, match="scales queries by"):
        write_gguf(family_model("gemma3_text", query_pre_attn_scalar=64), ByteTokenizer(256), None,
                   tmp_path / "b.gguf")
