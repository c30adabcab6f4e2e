"""Scored is shipped: a candidate exported as GGUF and run by llama.cpp scores what the search recorded."""

from __future__ import annotations

import llama_cpp  # noqa: F401 - a missing runtime must fail the suite, never skip it

from search.data_policy import DataPolicy
from search.evaluation import evaluate_recipe, loaded_model
from search.export_candidate import export_candidate
from search.recipe import parse_recipe
from search.runtimes.llamacpp_quality import evaluate_gguf
from tests.runtimes.tiny_models import tiny_causal


def test_minilm_candidate_gguf_reproduces_the_recorded_cosine(tmp_path):
    policy = DataPolicy(eval_rows=4, calib_rows=4, seq_len=48)
    recipe = parse_recipe({"layers": {"_default": {"format": "Q4_0"}}, "width": {"mlp": 0.5}})
    recorded = evaluate_recipe(loaded_model("demo:minilm"), recipe, policy).quality["cosine"]
    path = export_candidate("demo:minilm", recipe, tmp_path / "minilm.gguf", policy=policy, format="gguf")
    shipped = evaluate_gguf(path, threads=2)
    assert shipped["data"] == policy.record() and shipped["recipe"] == recipe.model_dump(mode="json")
    assert abs(shipped["quality"]["cosine"] - recorded) < 0.002, (shipped["quality"], recorded)


def test_llama_candidate_gguf_reproduces_the_recorded_kl(tmp_path):
    tiny_causal("llama", hidden_size=256, intermediate_size=512).save_pretrained(tmp_path / "llama")
    ref = str(tmp_path / "llama")
    policy = DataPolicy(eval_rows=8, calib_rows=4, seq_len=64)
    recipe = parse_recipe({"layers": {"_default": {"format": "Q4_K"}}, "width": {"mlp": 0.5},
                           "embedding": {"format": "Q6_K"}})
    recorded = evaluate_recipe(loaded_model(ref), recipe, policy).quality["kl"]
    path = export_candidate(ref, recipe, tmp_path / "llama.gguf", policy=policy, format="gguf")
    shipped = evaluate_gguf(path, threads=2)["quality"]["kl"]
    assert abs(shipped - recorded) <= 0.02 * recorded, (shipped, recorded)
