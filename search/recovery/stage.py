"""Recovery in the search's pipeline: the "recover" evaluation stage, `evaluate --recover` and
exporting a recovered candidate.

A recovered candidate is reproducible from (model, recipe, calibration text, seed, steps):
recovery with a step budget is deterministic on one machine, and a time budget is recorded as
the number of steps it reached, so export re-runs exactly that many steps instead of shipping
weights between workers.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from search.executor import EvalResult, EvalTask

if TYPE_CHECKING:
    from search.evaluators.pipeline import RecipeEvaluation
    from search.models import LoadedModel
    from search.recipe import CompressionConfig

DEFAULT_BUDGET = "200steps"


@lru_cache(maxsize=4)
def _training_rows(ref: str, text: str | None, seq_len: int) -> Any:
    from search.evaluate_task import loaded_model
    from search.recovery.recover import DEFAULT_TRAIN_ROWS, training_batches

    return training_batches(loaded_model(ref), seq_len, DEFAULT_TRAIN_ROWS, text)


def evaluate_recover(task: EvalTask) -> EvalResult:
    """Stage "recover": compress, distill against the original within spec.recover, score before and after.

    quality is the recovered metrics; extra carries the metrics before recovery and what the run did.
    """
    from search.evaluate_task import compress, loaded_model, quality_evaluator
    from search.memory import model_bytes
    from search.recovery.recover import recover

    start = time.perf_counter()
    spec = task.spec
    evaluator = quality_evaluator(spec.model, spec.calibration_text, spec.calib_samples, spec.seq_len)
    compressed = compress(spec, task.recipe)  # outside inference mode: it is trained next
    details: dict[str, Any] = {}
    model, before, after = recover(loaded_model(spec.model), compressed, task.recipe,
                                   _training_rows(spec.model, spec.calibration_text, spec.seq_len),
                                   spec.recover or DEFAULT_BUDGET, evaluator=evaluator, seed=spec.seed,
                                   details=details)
    latency_ms = None
    if spec.measure:
        from search.hw_profiles.measure import measure_latency

        latency_ms = float(measure_latency(model, spec.parsed_workload).median_ms)
    return EvalResult(key=task.key, quality={k: float(v) for k, v in after.items()}, latency_ms=latency_ms,
                      memory_bytes=int(model_bytes(model)), seconds=time.perf_counter() - start,
                      worker=f"{socket.gethostname()}:{os.getpid()}",
                      extra={"stage": "recover", "quality_before": before, "recovery": details})


def recovered_model(loaded: LoadedModel, recipe: CompressionConfig, steps: int, *, text: Any = None,
                    samples: int = 16, seq_len: int = 128, seed: int = 0) -> Any:
    """The compressed model of recipe after ``steps`` recovery steps (what export writes for a recovered candidate)."""
    from search.compress import apply
    from search.evaluators.pipeline import calibration_for, evaluator_for
    from search.recovery.recover import DEFAULT_TRAIN_ROWS, recover, training_batches

    compressed = apply(loaded.model, recipe, calibration_for(loaded, text, min(8, samples), seq_len))
    model, _, _ = recover(loaded, compressed, recipe, training_batches(loaded, seq_len, DEFAULT_TRAIN_ROWS, text),
                          f"{steps}steps", evaluator=evaluator_for(loaded, text, samples, seq_len), seed=seed)
    return model


@dataclass
class RecoveredEvaluation:
    """`evaluate --recover`: the recipe's evaluation after recovery, with the metrics before it."""

    base: RecipeEvaluation
    quality: dict[str, float]
    quality_before: dict[str, float]
    recovery: dict[str, Any] = field(default_factory=dict)
    compressed: Any = field(default=None, repr=False)

    @property
    def memory_bytes(self) -> int:
        return self.base.memory_bytes

    @property
    def recipe(self) -> CompressionConfig:
        return self.base.recipe

    def as_json(self) -> dict[str, Any]:
        return {**self.base.as_json(), "quality": self.quality, "quality_before_recovery": self.quality_before,
                "recovery": self.recovery}


def recover_evaluation(loaded: LoadedModel, evaluation: RecipeEvaluation, budget: str, *, text: Any = None,
                       samples: int = 16, seq_len: int = 128, seed: int = 0,
                       progress: bool = True) -> RecoveredEvaluation:
    """Recover an evaluated recipe's compressed model within budget and score it on the same eval text."""
    from search.evaluators.pipeline import evaluator_for
    from search.recovery.budget import parse_budget
    from search.recovery.recover import DEFAULT_TRAIN_ROWS, recover, training_batches

    parse_budget(budget)  # a bad budget fails before any training
    details: dict[str, Any] = {}
    model, before, after = recover(loaded, evaluation.compressed, evaluation.recipe,
                                   training_batches(loaded, seq_len, DEFAULT_TRAIN_ROWS, text), budget,
                                   evaluator=evaluator_for(loaded, text, samples, seq_len), seed=seed,
                                   progress=progress, details=details)
    return RecoveredEvaluation(base=evaluation, quality=after, quality_before=before, recovery=details,
                               compressed=model)
