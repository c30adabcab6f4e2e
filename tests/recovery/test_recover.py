"""recover(): before/after metrics on held-out text, input untouched, packed result, budgets."""

import torch

from search.compress import apply
from search.compress.modules import QuantizedLinear
from search.data import calibration_batches
from search.evaluators.quality import QualityEvaluator
from search.recipe import CompressionConfig
from search.recovery import recover
from search.recovery.recover import RecoverySettings


def _setup(tiny_llama, recipe):
    train = calibration_batches(tiny_llama.tokenizer, split="calib", n=16, seq_len=32)
    evaluator = QualityEvaluator(tiny_llama, calibration_batches(tiny_llama.tokenizer, split="eval", n=4, seq_len=32))
    return apply(tiny_llama.model, recipe), train, evaluator


def test_recover_improves_a_2bit_model_and_leaves_the_input_alone(tiny_llama):
    recipe = CompressionConfig.uniform(bits=2, group_size=32)
    compressed, train, evaluator = _setup(tiny_llama, recipe)
    original = {k: v.clone() for k, v in compressed.state_dict().items()}
    model, before, after = recover(tiny_llama, compressed, recipe, train, "12steps", evaluator=evaluator,
                                   settings=RecoverySettings(lr=1e-3), keep_best=False)
    assert set(before) == set(after) == {"kl", "perplexity", "top1"}
    assert after["kl"] < before["kl"]
    assert isinstance(model.model.layers[0].self_attn.q_proj, QuantizedLinear)
    assert evaluator.evaluate(model)["kl"] == after["kl"]
    assert all(torch.equal(v, original[k]) for k, v in compressed.state_dict().items())


def test_keep_best_returns_the_input_when_training_hurts(tiny_llama):
    recipe = CompressionConfig.uniform(bits=4, group_size=32)
    compressed, train, evaluator = _setup(tiny_llama, recipe)
    # a learning rate far too high: recovery diverges, and keep_best hands back the model as it was
    model, before, after = recover(tiny_llama, compressed, recipe, train, "3steps", evaluator=evaluator,
                                   settings=RecoverySettings(lr=3.0))
    assert model is compressed and after == before


def test_time_budget(tiny_llama):
    recipe = CompressionConfig.uniform(width=0.5)
    compressed, train, evaluator = _setup(tiny_llama, recipe)
    _, before, after = recover(tiny_llama, compressed, recipe, train, "0.5s", evaluator=evaluator)
    assert after["kl"] <= before["kl"]
