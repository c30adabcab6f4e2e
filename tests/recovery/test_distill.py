"""Distillation: the loss is the seeds' formula and a few steps reduce the student's divergence."""

import copy

import pytest
import torch

from search.errors import SpecError
from search.models import build_from_config
from search.recovery import Distiller, parse_budget
from search.recovery.distill import kd_kl
from tests.conftest import tiny_config


def _noisy_copy(model, scale, seed=0):
    torch.manual_seed(seed)
    student = copy.deepcopy(model)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(scale * torch.randn_like(p))
    return student


@pytest.fixture(scope="module")
def llama_pair():
    teacher = build_from_config(tiny_config("llama"))
    return teacher, _noisy_copy(teacher, 0.03)


def _ids(n=8, seq=32, vocab=384, seed=1):
    return torch.randint(0, vocab, (n, seq), generator=torch.Generator().manual_seed(seed))


def test_kd_kl_matches_the_formula():
    torch.manual_seed(0)
    zs, zt = torch.randn(2, 5, 7), torch.randn(2, 5, 7)
    t = 3.0
    pt = torch.softmax(zt / t, -1)
    expected = (t * t) * (pt * (pt.log() - torch.log_softmax(zs / t, -1))).sum(-1).mean()
    assert torch.allclose(kd_kl(zs, zt, t), expected, atol=1e-6)
    assert float(kd_kl(zt, zt, t)) == pytest.approx(0.0, abs=1e-6)


def test_distillation_reduces_kl_on_a_tiny_causal_lm(llama_pair):
    teacher, student = llama_pair
    student = copy.deepcopy(student)
    ids = _ids()
    distiller = Distiller(teacher, student, temperature=1.0)
    before = distiller.evaluate(ids)
    report = distiller.train(ids, steps=15, lr=1e-3)
    after = distiller.evaluate(ids)
    assert report.steps == 15 and len(report.losses) == 15
    assert after < 0.5 * before, (before, after)
    assert not any(p.requires_grad for p in teacher.parameters())


def test_ce_term_and_hidden_matching_are_added(llama_pair):
    teacher, student = llama_pair
    ids = _ids(n=2)
    plain = Distiller(teacher, student).loss(ids)[1]
    both = Distiller(teacher, student, alpha=0.5, hidden_weight=1.0).loss(ids)[1]
    assert set(plain) == {"kl"} and set(both) == {"kl", "ce", "hidden"}
    assert both["kl"] == pytest.approx(plain["kl"], rel=1e-5)
    assert both["ce"] > 0 and both["hidden"] > 0


def test_hidden_matching_learns_a_projection_when_widths_differ():
    teacher = build_from_config(tiny_config("llama"))
    narrow = build_from_config(tiny_config("llama", hidden_size=32, num_attention_heads=2, num_key_value_heads=1))
    distiller = Distiller(teacher, narrow, hidden_weight=1.0)
    assert distiller.projection is not None and distiller.projection.weight.shape == (64, 32)
    before = distiller.projection.weight.detach().clone()
    distiller.train(_ids(n=4, seq=16), steps=3, lr=1e-2)
    assert not torch.equal(before, distiller.projection.weight)


def test_encoder_embedding_matching_improves_cosine():
    teacher = build_from_config(tiny_config("bert"))
    student = _noisy_copy(teacher, 0.05)
    ids = _ids(n=8, seq=24)
    distiller = Distiller(teacher, student)
    assert distiller.kind == "encoder"
    before = distiller.evaluate(ids)  # 1 - cosine of pooled embeddings
    distiller.train(ids, steps=15, lr=1e-3)
    assert distiller.evaluate(ids) < before


def test_time_budget_stops_training(llama_pair):
    teacher, student = llama_pair
    report = Distiller(teacher, copy.deepcopy(student)).train(_ids(n=4), time_limit=0.3, lr=1e-4)
    assert report.steps >= 1 and report.seconds < 5


def test_bad_inputs_are_one_line_errors(llama_pair):
    teacher, student = llama_pair
    d = Distiller(teacher, student)
    with pytest.raises(SpecError, match="budget"):
        d.train(_ids(), lr=1e-4)
    with pytest.raises(SpecError, match="LongTensor"):
        d.train(torch.zeros(2, 8), steps=1)


def test_parse_budget():
    assert parse_budget("200steps").steps == 200
    assert parse_budget("1 step").steps == 1
    assert parse_budget("30s").seconds == 30
    assert parse_budget("2m").seconds == 120
    for bad in ("200", "fast", "0steps", "-3s"):
        with pytest.raises(SpecError):
            parse_budget(bad)
