"""Evaluate one candidate: what every executor runs (in-process, a local process pool, a Celery worker).

Loading a model and computing the teacher's outputs are the expensive parts, so
both are cached per process, keyed by model reference and data. Stage "proxy"
uses a short slice of the evaluation data; "full" uses all of it.
"""

from __future__ import annotations

import os
import socket
import time
from functools import lru_cache
from typing import Any

from search.executor import EvalResult, EvalTask
from search.recipe import CompressionConfig
from search.spec import SearchSpec

CALIBRATION_SEQUENCES = 8  # sequences used by Wanda scores and width-pruning importance


def proxy_samples(spec: SearchSpec) -> int:
    """Sequences in the stage-2 quality proxy: a quarter of the full evaluation, at least 2."""
    return min(spec.calib_samples, max(2, spec.calib_samples // 4))


@lru_cache(maxsize=4)
def loaded_model(ref: str) -> Any:
    from search.models import load_model

    return load_model(ref)


@lru_cache(maxsize=16)
def data_batches(ref: str, text: str | None, split: str, n: int, seq_len: int) -> Any:
    from search.data import calibration_batches

    return calibration_batches(loaded_model(ref).tokenizer, text=text, split=split, n=n, seq_len=seq_len)


@lru_cache(maxsize=8)
def quality_evaluator(ref: str, text: str | None, n: int, seq_len: int) -> Any:
    from search.evaluators.quality import QualityEvaluator

    return QualityEvaluator(loaded_model(ref), data_batches(ref, text, "eval", n, seq_len))


def needs_calibration(recipe: CompressionConfig) -> bool:
    """Wanda scores and width-pruning importance use activations; everything else is data-free."""
    return (recipe.width.mlp < 1 or recipe.width.heads < 1
            or any(s.sparsity_score == "wanda" and s.sparsity > 0 for s in recipe.layers.values()))


_last_compressed: dict[tuple, Any] = {}  # the most recent compressed model: stage 3 reuses stage 2's


def compress(spec: SearchSpec, recipe: CompressionConfig) -> Any:
    """The compressed torch model of a recipe (the loaded model itself is left untouched)."""
    key = (spec.model, spec.calibration_text, spec.calib_samples, spec.seq_len, recipe.to_json())
    if key not in _last_compressed:
        _last_compressed.clear()
        _last_compressed[key] = _apply(spec, recipe)
    return _last_compressed[key]


def _apply(spec: SearchSpec, recipe: CompressionConfig) -> Any:
    from search.compress import apply

    calibration = None
    if needs_calibration(recipe):
        calibration = data_batches(spec.model, spec.calibration_text, "calib",
                                   min(CALIBRATION_SEQUENCES, spec.calib_samples), spec.seq_len)
    return apply(loaded_model(spec.model).model, recipe, calibration=calibration)


def evaluate(task: EvalTask) -> EvalResult:
    """Apply the recipe, measure quality (and latency on this host when spec.measure)."""
    import torch

    from search.memory import model_bytes

    if task.stage == "recover":  # distillation / QAT of a finalist (spec.recover): search/recovery/stage.py
        from search.recovery.stage import evaluate_recover

        return evaluate_recover(task)
    start = time.perf_counter()
    spec = task.spec
    n = proxy_samples(spec) if task.stage == "proxy" else spec.calib_samples
    evaluator = quality_evaluator(spec.model, spec.calibration_text, n, spec.seq_len)
    with torch.inference_mode():
        student = compress(spec, task.recipe)
        quality = {k: float(v) for k, v in evaluator.evaluate(student).items()}
    latency_ms = None
    if spec.measure:
        from search.hw_profiles.measure import measure_latency

        latency_ms = float(measure_latency(student, spec.parsed_workload).median_ms)
    return EvalResult(key=task.key, quality=quality, latency_ms=latency_ms, memory_bytes=int(model_bytes(student)),
                      seconds=time.perf_counter() - start, worker=f"{socket.gethostname()}:{os.getpid()}",
                      extra={"stage": task.stage, "samples": n})
