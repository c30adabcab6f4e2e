"""Candidates: finished trials read back as recipes with metrics, and the front they form."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from search.pareto import non_dominated
from search.recipe import CompressionConfig

if TYPE_CHECKING:
    from search.engine import SearchResult


@dataclass
class Candidate:
    trial: int
    recipe: CompressionConfig
    quality: dict[str, float]
    latency_ms: float
    memory_bytes: int
    feasible: bool
    stage: str  # rejected (stage 1) | proxy (stage 2 only) | full
    constraints: tuple[float, ...] = ()
    proxy_quality: dict[str, float] = field(default_factory=dict)
    predicted_latency_ms: float | None = None
    seed: str | None = None
    quality_before_recovery: dict[str, float] | None = None  # set when the search recovered it (spec.recover)
    recovery: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"trial": self.trial, "quality": self.quality, "latency_ms": self.latency_ms,
                "memory_bytes": self.memory_bytes, "recipe": self.recipe.model_dump(mode="json"),
                "summary": self.recipe.summary(), "feasible": self.feasible, "stage": self.stage,
                "predicted_latency_ms": self.predicted_latency_ms, "seed": self.seed,
                **({"quality_before_recovery": self.quality_before_recovery, "recovery": self.recovery}
                   if self.quality_before_recovery is not None else {})}


CANDIDATE_ATTR = "candidate"  # the trial user attribute holding a candidate's record


def candidate_from_record(number: int, record: dict[str, Any], seed: str | None,
                          metric: tuple[str, str]) -> Candidate | None:
    if record.get("stage") not in ("rejected", "proxy", "full") or metric[0] not in record.get("quality", {}):
        return None
    return Candidate(
        trial=number, recipe=CompressionConfig.model_validate(record["recipe"]), quality=record["quality"],
        latency_ms=float(record["latency_ms"]), memory_bytes=int(record["memory_bytes"]),
        feasible=bool(record["feasible"]), stage=record["stage"], constraints=tuple(record.get("constraints", ())),
        proxy_quality=record.get("proxy_quality") or {}, predicted_latency_ms=record.get("predicted_latency_ms"),
        seed=seed, quality_before_recovery=record.get("quality_before_recovery"), recovery=record.get("recovery"))


def trial_candidate(trial: Any, metric: tuple[str, str]) -> Candidate | None:
    """The candidate a COMPLETE trial holds (None for trials this engine did not record)."""
    record = trial.user_attrs.get(CANDIDATE_ATTR)
    if not isinstance(record, dict):
        return None
    return candidate_from_record(trial.number, record, trial.user_attrs.get("seed"), metric)


def objective_point(c: Candidate, objectives: tuple[str, ...], metric: tuple[str, str]) -> tuple[float, ...]:
    """The candidate's objectives, every one minimised (a maximised quality metric is negated)."""
    value = c.quality[metric[0]]
    loss = -value if metric[1] == "max" else value
    return tuple({"quality": loss, "latency": c.latency_ms, "memory": float(c.memory_bytes)}[o] for o in objectives)


def front_of(candidates: list[Candidate], objectives: tuple[str, ...], metric: tuple[str, str]) -> list[Candidate]:
    """Non-dominated feasible candidates with a full quality evaluation, best quality first."""
    pool = [c for c in candidates if c.feasible and c.stage == "full"]
    points = [objective_point(c, objectives, metric) for c in pool]
    front = [pool[i] for i in non_dominated(points)]
    return sorted(front, key=lambda c: (objective_point(c, ("quality",), metric), c.latency_ms))


def pessimistic_quality(history: list[Candidate], metric: tuple[str, str]) -> float:
    """A stand-in quality for candidates never evaluated: the worst seen so far."""
    seen = [c.quality[metric[0]] for c in history if c.stage != "rejected"]
    if metric[1] == "max":
        return min(seen, default=0.0)
    return max(seen, default=10.0)


def save_front(result: SearchResult) -> Any:
    """Write the study's front.json (atomically); returns its path."""
    from search.results import write_front

    payload = result.to_json()
    payload.pop("results_path", None)
    payload.update(spec=result.spec.model_dump(mode="json"), objectives=list(result.spec.objectives),
                   updated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return write_front(result.study, payload)
