"""The one evaluation path (search/evaluation.py) behind the search, search-cli evaluate and search.evaluate."""

from search.data_policy import DataPolicy
from search.evaluation import evaluate_recipe, needs_calibration
from search.memory import model_bytes
from search.recipe import CompressionConfig


def test_only_activation_aware_recipes_need_calibration_data():
    assert not needs_calibration(CompressionConfig.uniform(bits=4, sparsity=0.5))
    assert not needs_calibration(CompressionConfig.uniform(rank=0.5, keep_blocks=(0, 2)))
    assert needs_calibration(CompressionConfig.uniform(sparsity=0.5, sparsity_score="wanda"))
    assert needs_calibration(CompressionConfig.uniform(width=0.5))
    assert needs_calibration(CompressionConfig.uniform(heads=0.5))


def test_evaluate_recipe_reports_exact_memory_of_the_built_model(tiny_llama):
    recipe = CompressionConfig.uniform(bits=4, group_size=16, width=0.5)
    result = evaluate_recipe(tiny_llama, recipe, DataPolicy(eval_rows=2, calib_rows=2, seq_len=32))
    assert result.memory_bytes == model_bytes(result.compressed)
    assert set(result.quality) == {"kl", "perplexity", "top1"} and result.quality["kl"] > 0
    assert result.as_json()["recipe"]["width"]["mlp"] == 0.5
    assert result.as_json()["data"] == {"text": None, "calib_rows": 2, "eval_rows": 2, "seq_len": 32, "seed": 0}
