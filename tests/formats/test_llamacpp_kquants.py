"""End to end: a model whose layers and embeddings are devicefit's K-quant bytes, written to GGUF and run
by llama.cpp, scores (KL to the original) as the torch model with the same bytes does.

What remains between the two is llama.cpp's compute (it quantizes activations to 8 bits for the dot
products of quantized weights), not the weights: those are bit-exact (test_against_libggml).
llama-cpp-python is part of the test extra: these tests fail, not skip, without it.
"""

import llama_cpp  # noqa: F401 - a missing runtime must fail the suite, never skip it
import pytest
import torch

from search.compress import apply
from search.models import ByteTokenizer
from search.recipe import parse_recipe
from search.runtimes.gguf_writer import write_gguf
from tests.runtimes.tiny_models import llamacpp_logits, mean_kl, tiny_causal, token_rows, torch_logits

SIZES = dict(hidden_size=256, intermediate_size=512, num_attention_heads=4, num_key_value_heads=2)


@pytest.mark.parametrize(("model_type", "recipe"), [
    ("llama", {"layers": {"_default": {"format": "Q4_K"}, "re:down_proj": {"format": "Q6_K"},
                          "re:v_proj": {"format": "Q5_K"}, "lm_head": {"format": "Q6_K"}},
               "embedding": {"format": "Q3_K"}}),
    ("qwen2", {"layers": {"_default": {"format": "Q2_K"}}, "embedding": {"format": "Q5_K"}}),  # tied head
])
def test_llama_cpp_scores_devicefit_k_quants_as_torch_does(tmp_path, model_type, recipe):
    teacher = tiny_causal(model_type, **SIZES, tie_word_embeddings=model_type == "qwen2")
    recipe = parse_recipe(recipe)
    student = apply(teacher, recipe, dtype=torch.float32)
    rows = token_rows()
    path = write_gguf(student, ByteTokenizer(256), recipe, tmp_path / "k.gguf")
    reference = torch_logits(teacher, rows)
    torch_kl = mean_kl(reference, torch_logits(student, rows))
    cpp_kl = mean_kl(reference, llamacpp_logits(path, rows))
    assert torch_kl > 0.1  # the quantization error is real, so "within 2%" means something
    assert abs(cpp_kl - torch_kl) <= 0.02 * torch_kl, f"llama.cpp {cpp_kl:.4f} vs torch {torch_kl:.4f}"
