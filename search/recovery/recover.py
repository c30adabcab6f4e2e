"""recover(): the search's last stage: distill a compressed candidate against the original model.

The compressed model's packed layers are swapped for float32 training twins (QAT with the
straight-through estimator for quantized layers, masked training for sparse ones, plain
training for low-rank factors and width/depth-pruned layers), trained against the teacher
on the calibration ("calib") part of the text within a step or time budget, re-packed into
their real storage, and scored before and after on the disjoint "eval" part.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from search.recovery.budget import RecoveryBudget, parse_budget

if TYPE_CHECKING:
    import torch

    from search.hf_models import LoadedModel
    from search.recipe import CompressionConfig

log = logging.getLogger(__name__)

# Training rows for recovery: more than the quality evaluation's 16, since a few hundred
# steps on 16 rows would memorise them; the calib part of the default corpus holds ~20x this.
DEFAULT_TRAIN_ROWS = 128


@dataclass(frozen=True)
class RecoverySettings:
    """Hyper-parameters of one recovery run (defaults chosen on demo:tinylm / demo:minilm, docs/recovery.md)."""

    lr: float
    batch_size: int = 8
    temperature: float = 1.0
    alpha: float = 0.0
    hidden_weight: float = 0.0
    learn: str = "both"  # QAT: "weights", "scales" or "both"

    @classmethod
    def default_for(cls, is_causal: bool) -> RecoverySettings:
        if is_causal:
            return cls(lr=3e-4)
        return cls(lr=1e-4, hidden_weight=1.0)


def training_batches(teacher: LoadedModel, seq_len: int, rows: int = DEFAULT_TRAIN_ROWS,
                     text: Any = None) -> torch.Tensor:
    """Calibration-part token rows to train on (fewer when the text is short)."""
    from search.data import calibration_batches
    from search.errors import SpecError

    n = rows
    while True:
        try:
            return calibration_batches(teacher.tokenizer, text, "calib", n, seq_len)
        except SpecError:
            if n <= 4:
                raise
            n //= 2


def recover(teacher: LoadedModel, compressed_model: Any, recipe: CompressionConfig | None = None,
            batches: torch.Tensor | None = None, budget: str | RecoveryBudget = "200steps", *,
            evaluator: Any = None, settings: RecoverySettings | None = None, keep_best: bool = True,
            progress: bool = False, seed: int = 0,
            details: dict[str, Any] | None = None) -> tuple[Any, dict[str, float], dict[str, float]]:
    """(recovered model, metrics before, metrics after). The input model is left untouched.

    teacher: the original LoadedModel; compressed_model: search.compress.apply's output;
    batches: training token ids [n, seq] (default: 128 rows of the calib part);
    evaluator: a QualityEvaluator on held-out text (default: 16 rows of the eval part).
    With keep_best, a run that made the primary metric worse returns the model as it was
    (and its metrics as "after"), so recovery never costs quality.
    details, when given, is filled with what the run did: steps, seconds, kept ("recovered" or "original"),
    and the metrics the trained model reached even when it was not kept.
    """
    import torch

    from search.evaluators.quality import primary_metric
    from search.recovery.distill import Distiller
    from search.recovery.qat import make_trainable, pack_trained

    limit = parse_budget(budget)
    graph = teacher.graph
    settings = settings or RecoverySettings.default_for(graph.is_causal)
    seq_len = 128 if batches is None else batches.shape[1]
    if evaluator is None:  # 16 rows of the default corpus's eval part, as a DataPolicy's default
        from search.data import calibration_batches
        from search.evaluators.quality import QualityEvaluator

        evaluator = QualityEvaluator(teacher, calibration_batches(
            teacher.tokenizer, None, "eval", 16, min(seq_len, graph.max_positions)))
    if batches is None:
        batches = training_batches(teacher, min(seq_len, graph.max_positions))
    before = evaluator.evaluate(compressed_model)
    torch.manual_seed(seed)
    student = make_trainable(copy.deepcopy(compressed_model), learn=settings.learn)
    distiller = Distiller(teacher.model, student, temperature=settings.temperature, alpha=settings.alpha,
                          hidden_weight=settings.hidden_weight, seed=seed)
    report = distiller.train(batches, steps=limit.steps, time_limit=limit.seconds, lr=settings.lr,
                             batch_size=settings.batch_size, progress=progress)
    recovered = pack_trained(student)
    after = evaluator.evaluate(recovered)
    name, direction = primary_metric(graph)
    worse = after[name] > before[name] if direction == "min" else after[name] < before[name]
    log.info("recovery %s: %d steps in %.1fs, %s %.4g -> %.4g", limit, report.steps, report.seconds, name,
             before[name], after[name])
    if details is not None:
        details.update(steps=report.steps, seconds=round(report.seconds, 2), budget=str(limit),
                       kept="original" if keep_best and worse else "recovered", trained=after)
    if keep_best and worse:
        return compressed_model, before, dict(before)
    return recovered, before, after
