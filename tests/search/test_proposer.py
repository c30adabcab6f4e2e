"""The guided proposals: the additive quality model, the proposer's pick, and the seeds' order."""

import math

from search.proposer import Proposer, _gain
from search.surrogate import AdditiveLoss

CHOICES = {"a.bits": [16, 8, 4, 2], "a.method": ["rtn", "gptq"], "b.bits": [16, 8, 4, 2],
           "b.method": ["rtn", "gptq"], "width.mlp": [1.0, 0.75, 0.5]}
# a made-up world: -log(cosine) adds per setting; GPTQ helps at 4 and 2 bits only; group b is 3x as sensitive
COST = {16: 0.0, 8: 0.001, 4: 0.02, 2: 0.2}
GPTQ = {16: 1.0, 8: 1.0, 4: 0.5, 2: 0.5}
WIDTH = {1.0: 0.0, 0.75: 0.1, 0.5: 0.4}


def true_loss(p):
    t = sum(scale * COST[p[f"{g}.bits"]] * (GPTQ[p[f"{g}.bits"]] if p[f"{g}.method"] == "gptq" else 1.0)
            for g, scale in (("a", 1.0), ("b", 3.0)))
    return 1.0 - math.exp(-(t + WIDTH[p["width.mlp"]]))


def params(a=16, b=16, am="rtn", bm="rtn", mlp=1.0):
    return {"a.bits": a, "a.method": am, "b.bits": b, "b.method": bm, "width.mlp": mlp}


def cost(p):
    memory = sum(p[f"{g}.bits"] for g in "ab") * p["width.mlp"]
    return 10.0 * p["width.mlp"], memory


def test_additive_model_splits_a_uniform_loss_by_sensitivity_and_predicts_unseen_combinations():
    model = AdditiveLoss(CHOICES, "max", sensitivity={"a": 1.0, "b": 3.0})
    seen = [params(), params(8, 8), params(4, 4), params(2, 2), params(4, 4, "gptq", "gptq"),
            params(2, 2, "gptq", "gptq"), params(4, 4, mlp=0.75), params(4, 4, mlp=0.5)]
    model.fit([(p, true_loss(p)) for p in seen])
    for p in seen:  # the observations themselves are reproduced
        assert abs(model.predict(p) - true_loss(p)) < 0.01
    # never observed: one group at 2 bits with GPTQ, the other at 8, a narrow MLP; the shares come from sensitivity
    unseen = params(2, 8, "gptq", "rtn", mlp=0.5)
    assert abs(model.predict(unseen) - true_loss(unseen)) < 0.02
    # equal shares instead would misplace which group may take the low bits
    equal = AdditiveLoss(CHOICES, "max")
    equal.fit([(p, true_loss(p)) for p in seen])
    assert abs(equal.predict(unseen) - true_loss(unseen)) > abs(model.predict(unseen) - true_loss(unseen))


def test_gain_is_the_hypervolume_a_point_adds():
    front = [(0.5, 0.5, 0.5)]
    assert _gain((0.5, 0.5, 0.5), front, (1, 1, 1)) == 0.0  # already there
    assert _gain((0.6, 0.6, 0.6), front, (1, 1, 1)) == 0.0  # dominated
    assert abs(_gain((0.0, 0.5, 0.5), front, (1, 1, 1)) - 0.5 * 0.5 * 0.5) < 1e-12


def _proposer(seed=0):
    def cheap(p):
        latency, memory = cost(p)
        return latency, memory, latency <= 9.0, repr(sorted(p.items()))  # the budget: 9 ms

    return Proposer(CHOICES, cheap, (1.0, 10.0, 32.0), "max", {"a": 1.0, "b": 3.0}, seed=seed)


def _observed(ps):
    return [(p, true_loss(p), *cost(p), cost(p)[0] <= 9.0) for p in ps]


def test_proposer_waits_for_a_few_evaluations_then_proposes_a_new_feasible_candidate_on_the_predicted_front():
    proposer = _proposer()
    assert proposer.propose(_observed([params(8, 8, mlp=0.75)]), set()) is None
    seen = [params(8, 8, mlp=0.75), params(4, 4, mlp=0.75), params(2, 2, mlp=0.75), params(4, 4, mlp=0.5),
            params(4, 4, "gptq", "gptq", mlp=0.75)]
    taken = {repr(sorted(p.items())) for p in seen}
    pick = proposer.propose(_observed(seen), taken)
    assert pick is not None and repr(sorted(pick.items())) not in taken and cost(pick)[0] <= 9.0
    # what it picked really adds to the front (the model is right about this world)
    truth = [(true_loss(p), cost(p)[0] / 10, cost(p)[1] / 32) for p in seen]
    new = (true_loss(pick), cost(pick)[0] / 10, cost(pick)[1] / 32)
    assert _gain(new, truth, (1, 1, 1)) > 0


def test_proposals_beat_random_choice_in_a_known_world():
    """Ten proposals from five seeds reach more hypervolume than ten random feasible candidates."""
    import itertools
    import random

    from search.pareto import hypervolume

    def hv(ps):
        return hypervolume([(true_loss(p), cost(p)[0] / 10, cost(p)[1] / 32) for p in ps if cost(p)[0] <= 9.0],
                           (1, 1, 1))

    start = [params(8, 8, mlp=0.75), params(4, 4, mlp=0.75), params(2, 2, mlp=0.75), params(4, 4, mlp=0.5),
             params(4, 4, "gptq", "gptq", mlp=0.75)]
    proposer, seen = _proposer(), list(start)
    for _ in range(10):
        pick = proposer.propose(_observed(seen), {repr(sorted(p.items())) for p in seen})
        if pick is None:
            break
        seen.append(pick)
    everything = [dict(zip(CHOICES, v, strict=True)) for v in itertools.product(*CHOICES.values())]
    feasible = [p for p in everything if cost(p)[0] <= 9.0 and p not in start]
    random_hv = sorted(hv(start + random.Random(s).sample(feasible, 10)) for s in range(20))
    assert hv(seen) > random_hv[len(random_hv) // 2]


def test_a_value_outside_the_choices_adds_no_feature():
    model = AdditiveLoss(CHOICES, "max")
    model.fit([(params(4, 4), 0.1)])
    assert model.predict({**params(4, 4), "width.mlp": 0.3}) == model.predict(params(4, 4))
