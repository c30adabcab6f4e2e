"""Pareto fronts and hypervolume, for points whose every objective is minimised.

Callers turn "maximise" objectives into minimised ones first (e.g. 1 - cosine).
Plain Python: fronts here are tens of points, so the exact slicing algorithm is
fast enough and needs no numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

Point = Sequence[float]


def dominates(a: Point, b: Point) -> bool:
    """a is no worse than b everywhere and strictly better somewhere."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def non_dominated(points: Sequence[Point]) -> list[int]:
    """Indices of the points no other point dominates; of exact duplicates only the first is kept."""
    keep: list[int] = []
    for i, p in enumerate(points):
        if any(dominates(q, p) for j, q in enumerate(points) if j != i):
            continue
        if any(tuple(points[k]) == tuple(p) for k in keep):
            continue
        keep.append(i)
    return keep


def hypervolume(points: Sequence[Point], reference: Point) -> float:
    """Volume dominated by the points and bounded by the reference point (all objectives minimised).

    Points not strictly better than the reference in every objective add nothing.
    Exact: slices along the last objective and recurses (HSO), O(n^(d-1)) for d objectives.
    """
    inside = [tuple(p) for p in points if all(x < r for x, r in zip(p, reference, strict=True))]
    if not inside:
        return 0.0
    front = [inside[i] for i in non_dominated(inside)]
    return _hv(front, tuple(reference))


def _hv(points: list[tuple[float, ...]], ref: tuple[float, ...]) -> float:
    if len(ref) == 1:
        return ref[0] - min(p[0] for p in points)
    if len(ref) == 2:
        total, best_y = 0.0, ref[1]
        for x, y in sorted(points):
            if y < best_y:
                total += (ref[0] - x) * (best_y - y)
                best_y = y
        return total
    # slice along the last objective: between consecutive levels the dominated
    # region's cross-section is the (d-1)-dimensional volume of the points below
    ordered = sorted(points, key=lambda p: p[-1])
    total = 0.0
    for k, p in enumerate(ordered):
        upper = ordered[k + 1][-1] if k + 1 < len(ordered) else ref[-1]
        depth = upper - p[-1]
        if depth > 0:
            below = [q[:-1] for q in ordered[: k + 1]]
            below = [below[i] for i in non_dominated(below)]
            total += depth * _hv(below, ref[:-1])
    return total
