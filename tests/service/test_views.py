"""Reading fronts from Optuna trials incrementally, and the per-layer breakdown of a candidate."""

from __future__ import annotations

import random

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from search.candidates import CANDIDATE_ATTR, Candidate, front_of
from search.memory import memory_report
from search.recipe import CompressionConfig
from search.spec import SearchSpec
from service.breakdown import graph_of, layer_breakdown
from service.studies import _Folded, fold

METRIC = ("cosine", "max")


def _trial(number: int, rng: random.Random, state=TrialState.COMPLETE):
    bits = rng.choice([16, 8, 6, 4, 3])
    quality, latency, memory = rng.random(), rng.uniform(5, 100), rng.randint(10, 90) * 10**6
    feasible = rng.random() > 0.2
    # the record the engine stores on each finished trial (search/candidates.py)
    record = {"recipe": CompressionConfig.uniform(bits=bits).model_dump(mode="json"), "quality": {"cosine": quality},
              "latency_ms": latency, "memory_bytes": memory, "feasible": feasible,
              "stage": rng.choice(["full", "full", "proxy", "rejected"]), "constraints": [0.0 if feasible else 0.5]}
    attrs = {CANDIDATE_ATTR: record}
    trial = create_trial(state=state, values=[quality, latency, memory] if state == TrialState.COMPLETE else None,
                         params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)}, user_attrs=attrs)
    trial.number = number
    return trial


def test_folding_in_batches_gives_the_front_of_all_trials():
    rng = random.Random(0)
    spec = SearchSpec(trials=300)
    trials = [_trial(i, rng, TrialState.COMPLETE if i % 7 else TrialState.RUNNING) for i in range(300)]
    expected = front_of([c for c in (Candidate.from_trial(t, METRIC) for t in trials if t.state == TrialState.COMPLETE)
                         if c is not None], spec.objectives, METRIC)
    folded = _Folded()
    for end in (40, 41, 180, 300):  # the study grows between polls; earlier trials are seen again
        fold(folded, trials[:end], spec, METRIC)
    assert len(expected) >= 3
    assert [c.trial for c in folded.front] == [c.trial for c in expected]
    assert folded.completed == sum(t.state == TrialState.COMPLETE for t in trials)


def test_fold_reads_a_real_optuna_study():
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    rng = random.Random(1)
    for i in range(20):
        study.add_trial(_trial(i, rng))
    folded = _Folded()
    fold(folded, study.get_trials(deepcopy=False), SearchSpec(), METRIC)
    assert folded.front and all(c.feasible and c.stage == "full" for c in folded.front)
    qualities = [c.quality["cosine"] for c in folded.front]
    assert qualities == sorted(qualities, reverse=True)


def test_breakdown_of_a_per_role_recipe_adds_up():
    spec = SearchSpec(model="demo:minilm", device="rpi5")
    recipe = CompressionConfig.model_validate({
        "layers": {"_default": {"bits": 8}, r"re:attention\.self\.query$": {"bits": 4, "rank": 0.25},
                   r"re:output\.dense$": {"bits": 4, "sparsity": 0.5, "sparsity_pattern": "2:4"}},
        "width": {"mlp": 0.5}, "keep_blocks": [0, 2, 5]})
    parts = layer_breakdown(spec, recipe)
    rows = {r["name"]: r for r in parts["layers"]}
    assert len(rows) == 18 and parts["dropped_blocks"] == [1, 3, 4]
    query = rows["encoder.layer.0.attention.self.query"]
    assert query["bits"] == 4 and query["rank"] == 96 and query["full_rank"] == 384
    assert rows["encoder.layer.2.intermediate.dense"]["out_features"] == 768  # MLP width halved (1536 -> 768)
    total = memory_report(graph_of(spec.model), recipe).total_bytes
    assert sum(r["memory_bytes"] for r in rows.values()) + parts["memory_other_bytes"] == total
    assert all(r["latency_ms"] > 0 for r in rows.values())
    assert set(parts["latency_breakdown"]) >= {"linear", "attention"}
