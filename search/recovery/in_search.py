"""Which fully evaluated candidates the search recovers (its last stage, when spec.recover is set).

Recovery costs seconds to minutes per candidate, so only candidates that could join the
front after it are recovered: a candidate is skipped when some front member is no slower,
no bigger and better than the candidate would be even after the largest recovery gain
seen so far. Until two candidates have been recovered the gain is unknown, and every
feasible candidate is recovered (the gain of distillation on a width- or depth-pruned
student is large, which is exactly why such candidates must not be judged before it).
"""

from __future__ import annotations

from typing import Any

MIN_OBSERVED_GAINS = 2
GAIN_FACTOR = 1.5  # optimism on top of the largest gain seen: gains vary from recipe to recipe


def loss_of(quality: dict[str, float], metric: tuple[str, str]) -> float:
    value = quality[metric[0]]
    return -value if metric[1] == "max" else value


def observed_gains(candidates: list[Any], metric: tuple[str, str]) -> list[float]:
    """Loss reductions recovery achieved on the candidates recovered so far."""
    gains = []
    for c in candidates:
        before = getattr(c, "quality_before_recovery", None)
        if before and metric[0] in before:
            gains.append(loss_of(before, metric) - loss_of(c.quality, metric))
    return gains


def expected_gain(candidates: list[Any], metric: tuple[str, str]) -> float:
    gains = observed_gains(candidates, metric)
    if len(gains) < MIN_OBSERVED_GAINS:
        return float("inf")
    return GAIN_FACTOR * max(0.0, max(gains))


def worth_recovering(quality: dict[str, float], latency_ms: float, memory_bytes: float, feasible: bool,
                     front: list[Any], history: list[Any], objectives: tuple[str, ...],
                     metric: tuple[str, str]) -> bool:
    """Could this candidate join the front after recovery? front/history: search.candidates.Candidate lists."""
    if not feasible:
        return False
    best_case = loss_of(quality, metric) - expected_gain(history, metric)
    for c in front:
        no_slower = "latency" not in objectives or c.latency_ms <= latency_ms
        no_bigger = "memory" not in objectives or c.memory_bytes <= memory_bytes
        if no_slower and no_bigger and loss_of(c.quality, metric) < best_case:
            return False
    return True
