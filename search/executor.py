"""How the engine hands candidate evaluations to whoever runs them.

The engine (search/engine.py) asks Optuna for a trial, turns it into an
EvalTask and submits it to an Executor; the executor returns a Future whose
result is an EvalResult. Messages carry ids and recipes, never weights, so
the same task runs in-process, in a local process pool, or on a Celery worker
on another machine (workers/executor.py).
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from search.recipe import CompressionConfig
from search.spec import SearchSpec

Stage = Literal["proxy", "full", "recover", "measure"]


class EvalTask(BaseModel):
    """One candidate to evaluate. Idempotent: keyed by (study, trial, stage)."""

    model_config = ConfigDict(frozen=True)

    study: str
    trial: int
    stage: Stage = "full"
    spec: SearchSpec
    recipe: CompressionConfig

    @property
    def key(self) -> str:
        return f"{self.study}:{self.trial}:{self.stage}"


class EvalResult(BaseModel):
    """What evaluating a candidate found. quality: metric name -> value (cosine, kl, perplexity...)."""

    model_config = ConfigDict(frozen=True)

    key: str
    quality: dict[str, float]
    latency_ms: float | None = None
    memory_bytes: int | None = None
    seconds: float = Field(0.0, description="wall time of the evaluation")
    worker: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class Executor(Protocol):
    """Runs EvalTasks, possibly many at once."""

    @property
    def max_in_flight(self) -> int:
        """How many tasks the engine should keep submitted at once."""
        ...

    def submit(self, task: EvalTask) -> Future[EvalResult]:
        """Start evaluating; the Future raises if the evaluation failed for good."""
        ...

    def shutdown(self) -> None:
        """Release workers/connections; pending futures may be cancelled."""
        ...
