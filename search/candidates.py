"""Candidate: a recipe with the metrics the search measured for it — the ONE shape the engine records on
each Optuna trial, the CLI prints, the service returns as JSON and the web page shows.

A trial's user attribute ``candidate`` holds ``Candidate.record()``; ``Candidate.from_trial`` reads it
back, so the front can be rebuilt from the storage alone (resume, ``show``, the service).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from search.pareto import non_dominated
from search.recipe import CompressionConfig

CANDIDATE_ATTR = "candidate"  # the trial user attribute holding a candidate's record
STAGES = ("rejected", "proxy", "full")  # stage 1 rejection | quality proxy only | full evaluation


class Candidate(BaseModel):
    model_config = ConfigDict(frozen=True)

    trial: int = Field(-1, description="Optuna trial number (stable: it names the candidate)")
    recipe: CompressionConfig
    quality: dict[str, float] = Field(description="metric -> value (cosine; or kl, perplexity and top1)")
    latency_ms: float = Field(description="predicted (or, with measure, measured) latency of the workload")
    memory_bytes: int = Field(description="exact bytes of the compressed model's weights")
    feasible: bool = Field(description="within the budget")
    stage: str = Field(description="rejected (stage 1) | proxy (stage 2 only) | full")
    constraints: tuple[float, ...] = Field((), description="budget violations (<= 0: met)")
    proxy_quality: dict[str, float] = Field(default_factory=dict)
    predicted_latency_ms: float | None = None
    seed: str | None = Field(None, description="the seed recipe's label, when the search enqueued it")
    data: dict[str, Any] | None = Field(None, description="the data policy it was built and scored with")
    quality_before_recovery: dict[str, float] | None = None  # set when the search recovered it (spec.recover)
    recovery: dict[str, Any] | None = Field(None, description="what its recovery run did (steps, kept)")
    built_memory_bytes: int | None = None
    eval_seconds: float | None = None
    worker: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def summary(self) -> str:
        return self.recipe.summary()

    def to_json(self) -> dict[str, Any]:
        # unset optional fields are left out; the recipe stays whole (its nulls are meaningful)
        return {k: v for k, v in self.model_dump(mode="json").items() if v is not None}

    def record(self) -> dict[str, Any]:
        """What the trial stores (its number and seed label live on the trial itself)."""
        data = self.to_json()
        for key in ("trial", "seed", "summary"):
            data.pop(key, None)
        return data

    @classmethod
    def from_record(cls, number: int, record: dict[str, Any], seed: str | None,
                    metric: tuple[str, str]) -> Candidate | None:
        """The candidate of a trial record (None for records of failed trials or another metric)."""
        if record.get("stage") not in STAGES or metric[0] not in record.get("quality", {}):
            return None
        fields = {k: v for k, v in record.items() if k in cls.model_fields and k not in ("trial", "seed")}
        return cls.model_validate({**fields, "trial": number, "seed": seed})

    @classmethod
    def from_trial(cls, trial: Any, metric: tuple[str, str]) -> Candidate | None:
        """The candidate a COMPLETE trial holds (None for trials this engine did not record)."""
        record = trial.user_attrs.get(CANDIDATE_ATTR)
        if not isinstance(record, dict):
            return None
        return cls.from_record(trial.number, record, trial.user_attrs.get("seed"), metric)


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
