"""QualityEvaluator: metrics checked against independent computations, memory modes, errors."""

import copy

import pytest
import torch

from search.data import calibration_batches
from search.errors import DeviceFitError, SpecError
from search.evaluators.pooling import mean_pool
from search.evaluators.quality import QualityEvaluator, primary_metric


def _noisy(model, scale: float, seed: int = 0):
    """A copy of the model with Gaussian noise of relative size ``scale`` on every linear weight."""
    student = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in student.modules():
            if isinstance(module, torch.nn.Linear):
                w = module.weight
                w.add_(torch.randn(w.shape, generator=gen) * w.std() * scale)
    return student


@pytest.fixture(scope="module")
def llama_batches(tiny_llama):
    return calibration_batches(tiny_llama.tokenizer, split="eval", n=6, seq_len=48)


def test_primary_metric(tiny_llama, minilm):
    assert primary_metric(tiny_llama.graph) == ("kl", "min")
    assert primary_metric(minilm.graph) == ("cosine", "max")


def test_causal_metrics_match_direct_computations(tiny_llama, llama_batches):
    ev = QualityEvaluator(tiny_llama, llama_batches)
    same = ev.evaluate(tiny_llama.model)
    assert set(same) == {"kl", "perplexity", "top1"} and abs(same["kl"]) < 1e-6
    student = _noisy(tiny_llama.model, 0.3)
    got = ev.evaluate(student)
    with torch.no_grad():
        t = torch.log_softmax(tiny_llama.model(llama_batches).logits, -1)
        out = student(llama_batches, labels=llama_batches)
        s = torch.log_softmax(out.logits, -1)
    # KL(teacher || student) per token, averaged over every position (nats)
    expected_kl = torch.nn.functional.kl_div(s, t, log_target=True, reduction="none").sum(-1).mean()
    assert got["kl"] == pytest.approx(float(expected_kl), rel=1e-4)
    # transformers' own shifted cross-entropy gives the same perplexity
    assert got["perplexity"] == pytest.approx(float(out.loss.exp()), rel=1e-4)


def test_recomputing_the_teacher_in_small_chunks_gives_the_same_numbers(tiny_llama, llama_batches):
    student = _noisy(tiny_llama.model, 0.2)
    cached = QualityEvaluator(tiny_llama, llama_batches).evaluate(student)
    bounded = QualityEvaluator(tiny_llama, llama_batches, cache_bytes=0, chunk_bytes=1)
    assert not bounded.caches_teacher and bounded.micro == 1
    again = bounded.evaluate(student)
    assert again["kl"] == pytest.approx(cached["kl"], rel=1e-5)
    assert again["perplexity"] == pytest.approx(cached["perplexity"], rel=1e-5)


def test_bfloat16_student_is_scored_in_float32(tiny_llama, llama_batches):
    ev = QualityEvaluator(tiny_llama, llama_batches)
    result = ev.evaluate(copy.deepcopy(tiny_llama.model).to(torch.bfloat16))
    assert 0 < result["kl"] < 1e-2 and isinstance(result["kl"], float)


def test_quality_falls_as_noise_grows(tiny_llama, llama_batches, minilm):
    ev = QualityEvaluator(tiny_llama, llama_batches)
    kls = [ev.evaluate(_noisy(tiny_llama.model, s))["kl"] for s in (0.05, 0.2, 0.8)]
    assert kls[0] < kls[1] < kls[2]
    enc = QualityEvaluator(minilm, calibration_batches(minilm.tokenizer, split="eval", n=2, seq_len=32))
    assert enc.evaluate(minilm.model)["cosine"] == pytest.approx(1.0, abs=1e-6)
    cos = [enc.evaluate(_noisy(minilm.model, s))["cosine"] for s in (0.05, 0.5)]
    assert 1.0 > cos[0] > cos[1]


def test_encoder_cosine_is_of_mean_pooled_states(minilm):
    batches = calibration_batches(minilm.tokenizer, split="eval", n=3, seq_len=40)
    student = _noisy(minilm.model, 0.3)
    got = QualityEvaluator(minilm, batches).evaluate(student)["cosine"]
    with torch.no_grad():
        t = minilm.model(batches).last_hidden_state.mean(1)
        s = student(batches).last_hidden_state.mean(1)
    assert got == pytest.approx(float(torch.cosine_similarity(s, t, dim=-1).mean()), rel=1e-5)


def test_mean_pool_ignores_masked_tokens():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    pooled = mean_pool(hidden.to(torch.bfloat16), torch.tensor([[1, 1, 0]]))
    assert pooled.dtype == torch.float32 and torch.allclose(pooled, torch.tensor([[2.0, 3.0]]))


def test_bad_batches_and_students(tiny_llama):
    with pytest.raises(SpecError, match="exceeds the model's maximum of 256"):
        QualityEvaluator(tiny_llama, torch.zeros(2, 300, dtype=torch.long))
    with pytest.raises(SpecError, match="outside the model's vocabulary of 384"):
        QualityEvaluator(tiny_llama, torch.full((2, 8), 500, dtype=torch.long))
    with pytest.raises(SpecError, match="LongTensor"):
        QualityEvaluator(tiny_llama, torch.zeros(2, 8))
    ev = QualityEvaluator(tiny_llama, torch.ones(1, 8, dtype=torch.long))
    with pytest.raises(DeviceFitError, match="torch.nn.Module"):
        ev.evaluate("not a model")


@pytest.mark.parametrize("family", ["llama", "qwen2", "gpt2", "bert"])
def test_every_family_scores_itself_perfectly_and_a_4bit_copy_worse(family):
    from search.compress import apply
    from search.models import ByteTokenizer, LoadedModel, build_from_config
    from search.recipe import CompressionConfig
    from search.space.graph import graph_from_model
    from tests.conftest import tiny_config

    model = build_from_config(tiny_config(family))
    loaded = LoadedModel(ref=family, model=model, tokenizer=ByteTokenizer(384), graph=graph_from_model(model))
    ev = QualityEvaluator(loaded, calibration_batches(loaded.tokenizer, split="eval", n=2, seq_len=32))
    name, direction = primary_metric(loaded.graph)
    perfect = ev.evaluate(model)[name]
    worse = ev.evaluate(apply(model, CompressionConfig.uniform(bits=4, group_size=16)))[name]
    if direction == "min":
        assert abs(perfect) < 1e-6 < worse
    else:
        assert perfect == pytest.approx(1.0, abs=1e-6) and worse < 1.0 - 1e-6
