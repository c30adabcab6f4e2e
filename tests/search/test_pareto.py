import random

import pytest

from search.pareto import dominates, hypervolume, non_dominated


def test_dominance():
    assert dominates((1, 2), (1, 3)) and not dominates((1, 3), (1, 2))
    assert not dominates((1, 2), (1, 2))
    assert not dominates((0, 3), (1, 2))


def test_non_dominated_keeps_the_front_and_one_of_each_duplicate():
    points = [(1, 5), (2, 2), (5, 1), (3, 3), (2, 2), (6, 6)]
    assert non_dominated(points) == [0, 1, 2]


def test_hypervolume_2d_by_hand():
    # staircase of (1,3), (2,2), (3,1) under reference (4,4): 3 + 2 + 1 = 6
    assert hypervolume([(1, 3), (2, 2), (3, 1), (3, 3)], (4, 4)) == pytest.approx(6.0)
    assert hypervolume([(5, 1)], (4, 4)) == 0.0


def test_hypervolume_3d_matches_monte_carlo():
    rng = random.Random(1)
    points = [tuple(rng.random() for _ in range(3)) for _ in range(12)]
    ref = (1.0, 1.0, 1.0)
    exact = hypervolume(points, ref)
    samples = [tuple(rng.random() for _ in range(3)) for _ in range(40_000)]
    hit = sum(any(all(p[i] <= s[i] for i in range(3)) for p in points) for s in samples) / len(samples)
    assert exact == pytest.approx(hit, abs=0.01)


def test_hypervolume_3d_boxes():
    assert hypervolume([(0, 0, 0)], (2, 3, 4)) == pytest.approx(24)
    # two boxes overlapping in [0,1]^3: 1*2*2 + 2*1*2 - 1*1*2
    assert hypervolume([(1, 0, 0), (0, 1, 0)], (2, 2, 2)) == pytest.approx(6)
