"""Guided proposals: after the seeds, the next full evaluation goes to the candidate whose predicted
point adds the most hypervolume to the front.

Candidates come from the front itself: each member's quantization under each structure of the space
(widths x depth), crossovers of two members, EvoPress-style mutations of members, plus a few random
draws. Each gets its exact stage-1 latency and memory (no model built) and a predicted quality from
the additive model (search/surrogate.py), refitted to every full evaluation so far. The one with the largest predicted
hypervolume gain is proposed; when none is predicted to gain anything, the caller falls back to its
sampler (NSGA-II by default). Predictions cost no forward pass: only full evaluations teach the model.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from search.pareto import hypervolume, non_dominated
from search.surrogate import AdditiveLoss

Params = dict[str, Any]
POOL = 240  # candidates scored per proposal (stage 1 is ~1 ms each, and cached)
MAX_SHAPES = 64  # up to this many structures (widths x depth), each is tried under each front member
RANDOM_SHARE = 0.1  # of the pool drawn uniformly at random: a little exploration beyond the front
UNIT = (1.0, 1.0, 1.0)  # the hypervolume's reference point, in objectives scaled by Proposer.reference
MIN_OBSERVED = 4  # below this many full evaluations the model knows too little: let the sampler propose


class Proposer:
    """propose(observed, taken): the params to evaluate next, or None (no predicted gain).

    observed: (params, loss, latency, memory, feasible) of every full evaluation; taken: recipe keys
    already evaluated or in flight. cheap(params) -> (latency, memory, feasible, recipe key).
    reference: what scales (loss, latency, memory) to 1 (the budget, or the uncompressed model's cost;
    inf for an objective the search does not have); a loss of None: 1.1 x the worst seen so far."""

    def __init__(self, choices: dict[str, list[Any]], cheap: Callable[[Params], tuple[float, float, bool, str]],
                 reference: tuple[float | None, float, float], metric_direction: str,
                 sensitivity: dict[str, float] | None = None, seed: int | None = None):
        self.choices, self.cheap, self.reference = choices, cheap, reference
        self.model = AdditiveLoss(choices, metric_direction, sensitivity)
        self.rng = random.Random(seed)
        self.structural = [n for n in choices if n.startswith("width.") or n == "depth"]
        self._costs: dict[str, tuple[float, float, bool, str]] = {}
        self._loss_ref = 1.0

    def propose(self, observed: list[tuple[Params, float, float, float, bool]], taken: set[str]) -> Params | None:
        feasible = [o for o in observed if o[4]]
        if len(observed) < MIN_OBSERVED or not feasible:
            return None
        self.model.fit([(o[0], o[1]) for o in observed])
        self._loss_ref = self.reference[0] or 1.1 * max(o[1] for o in observed) or 1.0
        points = [self._scaled(loss, lat, mem) for _, loss, lat, mem, _ in feasible]
        keep = non_dominated(points)
        front = [points[i] for i in keep]
        members = [feasible[i][0] for i in keep]
        scored = []
        for params in self._pool(members):
            key = repr(sorted(params.items()))
            if key not in self._costs:
                self._costs[key] = self.cheap(params)
            latency, memory, ok, recipe_key = self._costs[key]
            if ok and recipe_key not in taken:
                scored.append((self._scaled(self.model.predict(params), latency, memory), params))
        scored.sort(key=lambda s: -_box(s[0]))  # largest boxes first: smaller ones then often cannot win
        best, best_gain = None, 0.0
        for point, params in scored:
            gain = _gain(point, front, UNIT, at_least=best_gain)
            if gain > best_gain:
                best, best_gain = params, gain
        return best

    def _scaled(self, loss: float, latency: float, memory: float) -> tuple[float, float, float]:
        return (loss / self._loss_ref, latency / self.reference[1], memory / self.reference[2])

    def _pool(self, members: list[Params]) -> list[Params]:
        """Front members' quantization under every structure of the space (when there are few) or under
        other members' structures, uniform crossovers, EvoPress-style mutations, and random draws."""
        import itertools

        shapes = [dict(zip(self.structural, v, strict=True))
                  for v in itertools.product(*(self.choices[n] for n in self.structural))]
        if len(shapes) > MAX_SHAPES:
            shapes = [{n: m[n] for n in self.structural} for m in members]
        combos = [{**m, **shape} for m in members for shape in shapes]
        self.rng.shuffle(combos)
        pool = combos[: POOL // 2]
        for _ in range(POOL // 6):
            a, b = self.rng.choice(members), self.rng.choice(members)
            pool.append({n: (a if self.rng.random() < 0.5 else b)[n] for n in self.choices})
        while len(pool) < POOL * (1 - RANDOM_SHARE):
            pool.append(self._mutate(self.rng.choice(members)))
        while len(pool) < POOL:
            pool.append({name: self.rng.choice(options) for name, options in self.choices.items()})
        return pool

    def _mutate(self, parent: Params) -> Params:
        """1-3 parameters moved one option along their list (options run least to most compressed), or,
        one time in four, re-drawn anywhere (EvoPress's level moves, without its level-sum constraint)."""
        child = dict(parent)
        for name in self.rng.sample(list(self.choices), k=min(len(self.choices), self.rng.randint(1, 3))):
            options = self.choices[name]
            if self.rng.random() < 0.25:
                child[name] = self.rng.choice(options)
                continue
            i = options.index(child[name]) if child[name] in options else 0
            child[name] = options[max(0, min(len(options) - 1, i + self.rng.choice((-1, 1))))]
        return child


def _gain(point: tuple[float, ...], front: list[tuple[float, ...]], reference: tuple[float, ...],
          at_least: float = 0.0) -> float:
    """Hypervolume the point adds to the front: its own box minus the front's part of that box
    (0 without computing it when the point is dominated, or when even its box is <= at_least)."""
    if any(x >= r for x, r in zip(point, reference, strict=True)):
        return 0.0
    box = _box(point, reference)
    if box <= at_least or any(all(q <= x for q, x in zip(f, point, strict=True)) for f in front):
        return 0.0
    clipped = [tuple(max(p, x) for p, x in zip(q, point, strict=True)) for q in front]
    return box - hypervolume(clipped, reference)


def _box(point: tuple[float, ...], reference: tuple[float, ...] = (1.0, 1.0, 1.0)) -> float:
    box = 1.0
    for x, r in zip(point, reference, strict=True):
        box *= max(0.0, r - x)
    return box
