"""An EvoPress-style (1+λ) evolutionary search over devicefit's recipe space, as a benchmark arm.

EvoPress (Sieberling et al. 2024, "EvoPress: Towards Optimal Dynamic Model Compression via
Evolutionary Search") keeps one parent assignment of per-layer compression levels, makes λ
offspring per generation by "level-switch" mutation (one layer one level more compressed,
another one level less, so the sum of levels — its compression target — is unchanged), and keeps
the best of parent and offspring by quality.

Adapted to devicefit's space (the same Optuna parameters the search uses):
- a parameter's options are ordered into levels, least compressed first, by the predicted cost
  (latency + memory, relative) of the recipe that changes only that parameter; parameters whose
  options all cost the same (e.g. the quantization method) are not levels: a mutation re-draws
  one of them with probability ``free_rate``;
- the level sum is EvoPress's constraint; the device budget is kept by rejecting over-budget
  offspring before any evaluation (the stage-1 prediction, no model built);
- a front needs several targets: the search runs one (1+λ) chain per level-sum target (the
  midpoints of equal slices of the level range; a start over budget is compressed further until
  it fits), round-robin, and every fully evaluated candidate is collected.
  Every offspring is fully evaluated (EvoPress's multi-step selection on few tokens is not used:
  here building a candidate, not scoring it, is the cost, so a proxy saves little).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Params = dict[str, Any]


@dataclass(frozen=True)
class Levels:
    """Each leveled parameter's options, least compressed first; the other parameters are free choices."""

    order: dict[str, list[Any]]
    free: dict[str, list[Any]] = field(default_factory=dict)

    def level(self, params: Params, name: str) -> int:
        return self.order[name].index(params[name])

    def total(self, params: Params) -> int:
        return sum(self.level(params, name) for name in self.order)

    @property
    def max_total(self) -> int:
        return sum(len(options) - 1 for options in self.order.values())


def order_levels(choices: dict[str, list[Any]], cost: Callable[[Params], float]) -> Levels:
    """Levels of every parameter from the cost of the recipe that changes it alone (others at option 0).

    cost(params) is a predicted resource figure (lower = more compressed); ties keep the space's order.
    """
    base = {name: options[0] for name, options in choices.items()}
    order, free = {}, {}
    for name, options in choices.items():
        costs = {i: cost({**base, name: option}) for i, option in enumerate(options)}
        if len({round(c, 12) for c in costs.values()}) == 1:
            free[name] = list(options)
            continue
        ranked = sorted(range(len(options)), key=lambda i: (-costs[i], i))
        order[name] = [options[i] for i in ranked]
    return Levels(order, free)


def at_fraction(levels: Levels, base: Params, fraction: float) -> Params:
    """Every leveled parameter at the same fraction of its level range (EvoPress's uniform start)."""
    params = dict(base)
    for name, options in levels.order.items():
        params[name] = options[round(fraction * (len(options) - 1))]
    return params


def mutate(parent: Params, levels: Levels, rng: random.Random, moves: int = 1, free_rate: float = 0.5) -> Params:
    """Level-switch mutation: ``moves`` times, one parameter one level up and another one level down.

    The level sum is unchanged whenever both partners exist (they do unless every parameter sits at
    one end of its range); with probability free_rate one free parameter is re-drawn.
    """
    child = dict(parent)
    for _ in range(moves):
        up = [n for n, o in levels.order.items() if levels.level(child, n) < len(o) - 1]
        down = [n for n in levels.order if levels.level(child, n) > 0]
        a = rng.choice(up) if up else None
        partners = [n for n in down if n != a]
        b = rng.choice(partners) if partners else None
        if a is not None and b is not None:
            child[a] = levels.order[a][levels.level(child, a) + 1]
            child[b] = levels.order[b][levels.level(child, b) - 1]
    free = [name for name, options in levels.free.items() if len(options) > 1]
    if free and rng.random() < free_rate:
        name = rng.choice(free)
        child[name] = rng.choice([o for o in levels.free[name] if o != child[name]])
    return child


@dataclass
class Evaluated:
    """One full evaluation: its params, quality loss (lower is better) and whatever the caller recorded."""

    params: Params
    loss: float
    record: dict[str, Any]


@dataclass
class Chain:
    """One (1+λ) chain: a level-sum target and its current parent."""

    target: int
    parent: Evaluated | None = None


def select(parent: Evaluated | None, offspring: list[Evaluated]) -> Evaluated | None:
    """Survivor: the lowest loss of parent and offspring; the parent wins ties (elitism)."""
    best = parent
    for child in offspring:
        if best is None or child.loss < best.loss:
            best = child
    return best


def evopress(levels: Levels, base: Params, feasible: Callable[[Params], bool],
             evaluate: Callable[[Params], Evaluated], full_evaluations: int, *, targets: int = 3, lam: int = 2,
             seed: int = 0, max_moves: int = 3, tries: int = 200) -> list[Evaluated]:
    """Run ``targets`` (1+λ) chains round-robin until ``full_evaluations`` candidates are evaluated.

    feasible(params): the stage-1 budget check (no evaluation); evaluate(params): one full evaluation.
    Returns every evaluated candidate in evaluation order. A recipe is evaluated at most once.
    """
    rng = random.Random(seed)
    seen: dict[str, Evaluated] = {}
    out: list[Evaluated] = []

    def key(params: Params) -> str:
        return repr(sorted(params.items()))

    def spend(params: Params) -> Evaluated:
        done = evaluate(params)
        seen[key(params)] = done
        out.append(done)
        return done

    chains = []
    for k in range(targets):  # level-sum targets at the midpoints of equal slices of the level range
        fraction = (k + 0.5) / targets
        start = _make_feasible(at_fraction(levels, base, fraction), levels, feasible, rng, tries)
        if start is None or len(out) >= full_evaluations:
            continue
        chain = Chain(levels.total(start))  # the level sum mutations keep from here on
        chain.parent = seen[key(start)] if key(start) in seen else spend(start)
        chains.append(chain)
    while len(out) < full_evaluations and any(c.parent for c in chains):
        progressed = False
        for chain in chains:
            if chain.parent is None:
                continue
            offspring = []
            for _ in range(lam):
                if len(out) >= full_evaluations:
                    break
                child = _offspring(chain.parent.params, levels, feasible, rng, max_moves, tries,
                                   lambda p: key(p) in seen)
                if child is not None:
                    offspring.append(spend(child))
                    progressed = True
            chain.parent = select(chain.parent, offspring)
        if not progressed:
            break  # every chain is stuck: no new feasible recipe at its level sum
    return out


def _make_feasible(params: Params, levels: Levels, feasible: Callable[[Params], bool], rng: random.Random,
                   tries: int) -> Params | None:
    """A start over budget is compressed one random level at a time until it fits (its target then drops)."""
    for _ in range(tries):
        if feasible(params):
            return params
        up = [n for n, o in levels.order.items() if levels.level(params, n) < len(o) - 1]
        if not up:
            return None
        name = rng.choice(up)
        params = {**params, name: levels.order[name][levels.level(params, name) + 1]}
    return None


def _offspring(parent: Params, levels: Levels, feasible: Callable[[Params], bool], rng: random.Random,
               max_moves: int, tries: int, seen: Callable[[Params], bool]) -> Params | None:
    """A new feasible mutant of parent (1..max_moves level switches), or None after ``tries`` draws."""
    for _ in range(tries):
        child = mutate(parent, levels, rng, moves=rng.randint(1, max_moves))
        if not seen(child) and feasible(child):
            return child
    return None
