"""The EvoPress-style benchmark arm (bench/evopress.py): levels, level-switch mutation, selection, the loop."""

import random

import pytest

from bench.evopress import Evaluated, Levels, at_fraction, evopress, mutate, order_levels, select

CHOICES = {"a": ["x16", "x8", "x4"], "b": ["x16", "x8", "x4", "x2"], "c": [1.0, 0.5], "method": ["rtn", "gptq"]}
BITS = {"x16": 16, "x8": 8, "x4": 4, "x2": 2}


def cost(params):
    """Stand-in for predicted latency + memory: bits and width cost, the method costs nothing."""
    return BITS[params["a"]] + BITS[params["b"]] + 10 * params["c"]


def test_levels_order_options_by_cost_and_leave_equal_cost_parameters_free():
    levels = order_levels({**CHOICES, "b": ["x4", "x16", "x2", "x8"]}, cost)
    assert levels.order["b"] == ["x16", "x8", "x4", "x2"]  # least compressed first, whatever the space's order
    assert levels.order["c"] == [1.0, 0.5]
    assert "method" in levels.free and "method" not in levels.order


@pytest.mark.parametrize("seed", range(20))
def test_level_switch_mutation_keeps_the_level_sum(seed):
    levels = order_levels(CHOICES, cost)
    rng = random.Random(seed)
    parent = {"a": "x8", "b": "x8", "c": 1.0, "method": "rtn"}
    for moves in (1, 2, 3):
        child = mutate(parent, levels, rng, moves=moves)
        assert levels.total(child) == levels.total(parent)
        assert all(child[n] in CHOICES[n] for n in CHOICES)


def test_mutation_changes_something_when_a_switch_exists():
    levels = order_levels(CHOICES, cost)
    parent = {"a": "x8", "b": "x8", "c": 1.0, "method": "rtn"}
    assert any(mutate(parent, levels, random.Random(s), free_rate=0.0) != parent for s in range(10))


def test_selection_keeps_the_best_and_the_parent_wins_ties():
    parent = Evaluated({"a": 1}, 0.5, {})
    better, worse, tie = Evaluated({"a": 2}, 0.1, {}), Evaluated({"a": 3}, 0.9, {}), Evaluated({"a": 4}, 0.5, {})
    assert select(parent, [worse, better]) is better
    assert select(parent, [worse, tie]) is parent
    assert select(None, [worse, better]) is better


def test_the_loop_stays_within_budget_evaluates_each_recipe_once_and_improves():
    levels = Levels({f"g{i}": list(range(5)) for i in range(6)})
    weights = [5.0, 1.0, 3.0, 0.5, 4.0, 2.0]  # loss per level: compressing g3 and g1 hurts least

    def loss(p):
        return sum(w * p[f"g{i}"] for i, w in enumerate(weights))

    def feasible(p):  # the budget: at least 6 levels of compression in total
        return levels.total(p) >= 6

    evaluated = []

    def evaluate(p):
        evaluated.append(dict(p))
        return Evaluated(dict(p), loss(p), {})

    base = {name: 0 for name in levels.order}
    out = evopress(levels, base, feasible, evaluate, 40, targets=2, lam=4, seed=0)
    assert len(out) == len(evaluated) <= 40
    assert all(feasible(p) for p in evaluated)
    assert len({repr(sorted(p.items())) for p in evaluated}) == len(evaluated)
    # the first of 2 chains starts at the uniform level 1 of 4 (fraction 0.25: level sum 6, feasible)
    start = at_fraction(levels, base, 0.25)
    chain = [e for e in out if levels.total(e.params) == levels.total(start)]
    assert chain[0].params == start
    assert min(e.loss for e in chain) < loss(start)  # shifting levels to the cheap groups pays off


class _Group:
    def __init__(self, label):
        self.label = label


class _Recipe:
    def __init__(self, params):
        self.params = params

    def to_json(self):
        return repr(sorted(self.params.items()))


class _Space:
    """The RecipeSpace surface uniform_params uses: groups, choices, recipe(params)."""

    groups = [_Group("q"), _Group("fc1")]
    choices = {"q.format": ["F16", "Q8_0", "Q4_0"], "fc1.format": ["F16", "Q8_0", "Q4_0"],
               "embedding.format": ["F16", "Q8_0", "Q4_0"], "q.method": ["rtn", "gptq"],
               "fc1.method": ["rtn", "gptq"], "width.mlp": [1.0, 0.5], "depth": [1.0, 0.5]}

    def recipe(self, params):
        return _Recipe(params)


def test_uniform_recipes_share_one_format_and_method_and_leave_structure_alone():
    from bench.efficiency_arms import uniform_params

    recipes = uniform_params(_Space())
    assert len(recipes) == 3 * 2
    for p in recipes:
        assert p["q.format"] == p["fc1.format"] == p["embedding.format"]
        assert p["q.method"] == p["fc1.method"]
        assert p["width.mlp"] == 1.0 and p["depth"] == 1.0


def test_a_mutation_redraws_at_most_one_free_parameter():
    levels = Levels({"a": ["x16", "x8", "x4"], "b": ["x16", "x8", "x4"]},
                    free={"m1": ["rtn", "gptq"], "m2": ["rtn", "gptq"]})
    parent = {"a": "x8", "b": "x8", "m1": "rtn", "m2": "rtn"}
    for seed in range(20):
        child = mutate(parent, levels, random.Random(seed), free_rate=1.0)
        assert sum(child[m] != parent[m] for m in ("m1", "m2")) == 1
        assert mutate(parent, levels, random.Random(seed), free_rate=0.0)["m1"] == "rtn"
