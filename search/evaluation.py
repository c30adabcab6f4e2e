"""The one evaluation path: (model reference, recipe, data policy) -> compressed model and its metrics.

The search's workers (``evaluate_task``), recovery, ``search-cli evaluate``/``export``,
the service's downloads and the Python API all build and score candidates here, so
the model a user exports is the model the search scored: the same calibration rows
feed the data-aware transforms (Wanda scores, width-pruning importance), the same
evaluation rows score it, and a recovered candidate re-runs the recorded number of
recovery steps.

Loading a model and the teacher's outputs are the expensive parts: both are cached
per process (a worker evaluates many recipes of one model).
"""

from __future__ import annotations

import math
import os
import socket
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from search.data_policy import DataPolicy
from search.errors import DeviceFitError
from search.executor import EvalResult, EvalTask
from search.recipe import CompressionConfig

if TYPE_CHECKING:
    import torch

    from search.hf_models import LoadedModel
    from search.space.graph import ModelGraph

DEFAULT_RECOVERY_BUDGET = "200steps"


# ---- data ------------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def loaded_model(ref: str) -> LoadedModel:
    """The model behind a reference, loaded once per process."""
    from search.models import load_model

    return load_model(ref)


def check_sizes(graph: ModelGraph, rows: int, seq_len: int) -> None:
    """Refuse row counts and sequence lengths the model cannot take, before any heavy work."""
    if rows < 1:
        raise DeviceFitError(f"number of samples {rows} must be at least 1")
    if seq_len > graph.max_positions:
        raise DeviceFitError(f"sequence length {seq_len} exceeds the model's maximum of {graph.max_positions} "
                             f"positions; use --seq-len {graph.max_positions} or less")


def check_eval_rows(model_ref: str, policy: DataPolicy) -> None:
    """Refuse now, with its token count, a held-out evaluation text too short for the policy's rows.

    Only the model's tokenizer is loaded (no weights), so a search (or the service) refuses it
    before any trial runs; without ``eval_text`` there is nothing to check here.
    """
    if policy.eval_text is None:
        return
    from pathlib import Path

    from search.data import policy_eval_batches
    from search.hf_models import load_tokenizer
    from search.models import load_config_dict, resolve_ref

    target = resolve_ref(model_ref)
    if isinstance(target, Path) and target.is_dir() and (target / "recipe.json").is_file():
        return  # a devicefit export brings its source's tokenizer: its evaluation checks the text
    policy_eval_batches(load_tokenizer(target, load_config_dict(model_ref)), policy)


def needs_calibration(recipe: CompressionConfig) -> bool:
    """Wanda scores, GPTQ's rounding and width-pruning importance look at activations; everything else
    is data-free."""
    return (recipe.width.mlp < 1 or recipe.width.heads < 1
            or any(s.sparsity > 0 and s.sparsity_score == "wanda" for s in recipe.layers.values())
            or any(s.method == "gptq" and s.quantized for s in recipe.layers.values()))


def calibration_rows(loaded: LoadedModel, policy: DataPolicy) -> torch.Tensor:
    """Token rows of the text's calibration part, for the transforms that look at activations."""
    from search.data import calibration_batches

    check_sizes(loaded.graph, policy.calib_rows, policy.seq_len)
    return calibration_batches(loaded.tokenizer, policy.text, "calib", policy.calib_rows, policy.seq_len)


_EVALUATORS: OrderedDict[tuple, Any] = OrderedDict()  # (id(loaded), policy, rows) -> (loaded, evaluator)


def quality_evaluator(loaded: LoadedModel, policy: DataPolicy, rows: int | None = None) -> Any:
    """A QualityEvaluator of ``loaded`` on ``rows`` (default policy.eval_rows) rows of the evaluation text."""
    from search.data import policy_eval_batches
    from search.evaluators.quality import QualityEvaluator

    n = policy.eval_rows if rows is None else rows
    key = (id(loaded), policy, n)
    if key in _EVALUATORS:
        _EVALUATORS.move_to_end(key)
        return _EVALUATORS[key][1]
    check_sizes(loaded.graph, n, policy.seq_len)
    evaluator = QualityEvaluator(loaded, policy_eval_batches(loaded.tokenizer, policy, n))
    _EVALUATORS[key] = (loaded, evaluator)  # holding loaded keeps its id from being reused
    while len(_EVALUATORS) > 8:
        _EVALUATORS.popitem(last=False)
    return evaluator


# ---- build and score ---------------------------------------------------------------------------------
def compress(loaded: LoadedModel, recipe: CompressionConfig, policy: DataPolicy) -> Any:
    """The compressed torch model of ``recipe`` (``loaded`` is left untouched)."""
    import torch

    from search.compress import apply

    recipe.resolve(loaded.graph)
    calibration = calibration_rows(loaded, policy) if needs_calibration(recipe) else None
    with torch.no_grad():  # plain tensors (not inference tensors): recovery may train them next
        return apply(loaded.model, recipe, calibration=calibration, variants=variant_cache(loaded))


VARIANT_CACHE_ENV = "DEVICEFIT_VARIANT_CACHE_BYTES"
_VARIANTS: OrderedDict[int, tuple[Any, Any]] = OrderedDict()  # id(loaded) -> (loaded, VariantCache)


def variant_cache(loaded: LoadedModel) -> Any:
    """The compressed layers of ``loaded`` built in this process (search.compress.variant_cache), shared by
    every recipe and data policy (keys of data-dependent layers hold the calibration rows' digest); bounded
    by $DEVICEFIT_VARIANT_CACHE_BYTES (default 1 GiB per model; 0 turns it off, returning None)."""
    from search.compress.variant_cache import DEFAULT_MAX_BYTES, VariantCache

    raw = os.environ.get(VARIANT_CACHE_ENV, "").strip()
    try:
        max_bytes = int(raw) if raw else DEFAULT_MAX_BYTES
    except ValueError:
        raise DeviceFitError(f"{VARIANT_CACHE_ENV}={raw!r} must be a whole number of bytes (0 = no cache)") from None
    if max_bytes <= 0:
        return None
    key = id(loaded)
    if key in _VARIANTS:
        _VARIANTS.move_to_end(key)
        cache = _VARIANTS[key][1]
        cache.max_bytes = max_bytes
        return cache
    cache = VariantCache(max_bytes)
    _VARIANTS[key] = (loaded, cache)  # holding loaded keeps its id from being reused
    while len(_VARIANTS) > 2:
        _VARIANTS.popitem(last=False)
    return cache


def score(loaded: LoadedModel, student: Any, policy: DataPolicy, rows: int | None = None,
          progress: bool = False, *, recipe: CompressionConfig | None = None) -> dict[str, float]:
    """Quality of ``student`` against ``loaded``'s model: ``{"cosine"}`` or ``{"kl", "perplexity", "top1"}``
    for causal LMs. A GGUF candidate is scored in float32 (``runs_in_float32``)."""
    import copy

    import torch

    if runs_in_float32(student, recipe):
        student = copy.deepcopy(student).float()
    with torch.inference_mode():
        return {k: float(v) for k, v in quality_evaluator(loaded, policy, rows).evaluate(
            student, progress=progress).items()}


def uses_gguf_formats(recipe: CompressionConfig) -> bool:
    """Whether a recipe names GGUF tensor types (a llama.cpp candidate)."""
    return recipe.embedding.format is not None or any(s.format for s in recipe.layers.values())


def runs_in_float32(model: Any, recipe: CompressionConfig | None = None) -> bool:
    """Whether a candidate runs as llama.cpp runs it, in float32 (its stored values are kept; only the
    arithmetic widens): a GGUF recipe (``recipe`` names formats) or a model holding GGUF layers. bf16
    arithmetic alone would cost near-lossless types (BF16, Q8_0, Q6_K) more quality than their weights do."""
    from search.compress.gguf_linear import GgufLinear

    return (recipe is not None and uses_gguf_formats(recipe)) or any(isinstance(m, GgufLinear)
                                                                     for m in model.modules())


def recover(loaded: LoadedModel, compressed: Any, recipe: CompressionConfig, policy: DataPolicy, budget: str,
            *, progress: bool = False) -> tuple[Any, dict[str, float], dict[str, float], dict[str, Any]]:
    """Distill ``compressed`` against the original within ``budget``: (model, before, after, what it did).

    Recovery trains on the calibration part and is scored on the policy's evaluation rows; with a step
    budget it is deterministic on one machine, so ``build`` can re-run it from the recorded steps.
    """
    from search.recovery.budget import parse_budget
    from search.recovery.recover import recover as distill

    parse_budget(budget)  # a bad budget fails before any training
    details: dict[str, Any] = {}
    model, before, after = distill(loaded, compressed, recipe, _training_rows(loaded, policy), budget,
                                   evaluator=quality_evaluator(loaded, policy), seed=policy.seed,
                                   progress=progress, details=details)
    return model, before, after, details


def _training_rows(loaded: LoadedModel, policy: DataPolicy) -> torch.Tensor:
    from search.recovery.recover import DEFAULT_TRAIN_ROWS, training_batches

    return training_batches(loaded, policy.seq_len, DEFAULT_TRAIN_ROWS, policy.text)


def build(loaded: LoadedModel, recipe: CompressionConfig, policy: DataPolicy,
          recovery: dict[str, Any] | None = None) -> Any:
    """The model a candidate's record describes: compressed, then recovered for the recorded steps when the
    search kept a recovered model (recovery = the record's "recovery" entry)."""
    compressed = compress(loaded, recipe, policy)
    if recovery and recovery.get("kept") == "recovered":
        compressed, _, _, _ = recover(loaded, compressed, recipe, policy, f"{int(recovery['steps'])}steps")
    return compressed


@dataclass
class Evaluation:
    """A recipe's evaluation: quality, exact memory, the data policy and the compressed model."""

    recipe: CompressionConfig
    policy: DataPolicy
    quality: dict[str, float]
    memory_bytes: int
    compressed: Any = field(repr=False)  # torch.nn.Module
    quality_before: dict[str, float] | None = None  # set after recovery
    recovery: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = {"quality": _finite(self.quality), "memory_bytes": self.memory_bytes,
                "recipe": self.recipe.model_dump(mode="json"), "data": self.policy.record()}
        if self.quality_before is not None:
            data.update(quality_before_recovery=_finite(self.quality_before), recovery=self.recovery)
        return data


def _finite(quality: dict[str, float]) -> dict[str, float | None]:
    # a student broken enough to overflow (NaN/inf) reads as null: JSON has no infinities
    return {k: (v if math.isfinite(v) else None) for k, v in quality.items()}


def evaluate_recipe(loaded: LoadedModel, recipe: CompressionConfig, policy: DataPolicy | None = None, *,
                    recover_budget: str | None = None, progress: bool = False) -> Evaluation:
    """Apply ``recipe`` to ``loaded``, score it on the policy's evaluation rows, and (optionally) recover it."""
    from tqdm.auto import tqdm

    from search.memory import memory_report

    policy = policy or DataPolicy()
    recipe.resolve(loaded.graph)
    memory = memory_report(loaded.graph, recipe)  # cheap, and fails before any heavy work
    check_sizes(loaded.graph, policy.eval_rows, policy.seq_len)
    # disable=None: the bar shows on a terminal only, so piped stderr carries nothing but errors
    with tqdm(total=2, desc="applying recipe", file=sys.stderr, disable=None if progress else True,
              bar_format="{desc} [{n}/{total}] {elapsed}", leave=False) as bar:
        compressed = compress(loaded, recipe, policy)
        bar.set_description("scoring the compressed model")
        bar.update()
        quality = score(loaded, compressed, policy, recipe=recipe)
        bar.update()
    result = Evaluation(recipe=recipe, policy=policy, quality=quality, memory_bytes=int(memory.total_bytes),
                        compressed=compressed)
    if recover_budget:
        model, before, after, details = recover(loaded, compressed, recipe, policy, recover_budget,
                                                progress=progress)
        result.compressed, result.quality, result.quality_before, result.recovery = model, after, before, details
    return result


# ---- the executors' task ---------------------------------------------------------------------------
def proxy_rows(policy: DataPolicy) -> int:
    """Rows in the stage-2 quality proxy: a quarter of the full evaluation, at least 2."""
    return min(policy.eval_rows, max(2, policy.eval_rows // 4))


_last_compressed: dict[tuple, Any] = {}  # the most recent compressed model: stage 3 reuses stage 2's


def _compressed_for(ref: str, recipe: CompressionConfig, policy: DataPolicy) -> Any:
    key = (ref, policy, recipe.to_json())
    if key not in _last_compressed:
        _last_compressed.clear()
        _last_compressed[key] = compress(loaded_model(ref), recipe, policy)
    return _last_compressed[key]


def evaluate_task(task: EvalTask) -> EvalResult:
    """What every executor runs (in-process, a local process pool, a Celery worker) for one trial stage:
    "proxy" scores on a few rows, "full" on the policy's rows, "recover" distills first."""
    from search.memory import model_bytes

    start = time.perf_counter()
    spec, policy = task.spec, task.spec.data_policy
    loaded = loaded_model(spec.model)
    compressed = _compressed_for(spec.model, task.recipe, policy)
    extra: dict[str, Any] = {"stage": task.stage, "data": policy.record()}
    if task.stage == "recover":
        model, before, quality, details = recover(loaded, compressed, task.recipe, policy,
                                                  spec.recover or DEFAULT_RECOVERY_BUDGET)
        extra.update(quality_before=before, recovery=details)
    else:
        rows = proxy_rows(policy) if task.stage == "proxy" else policy.eval_rows
        model, quality = compressed, score(loaded, compressed, policy, rows, recipe=task.recipe)
        extra["samples"] = rows
    latency_ms = None
    if spec.measure:
        from search.hw_profiles.measure import measure_latency

        latency_ms = float(measure_latency(model, spec.parsed_workload).median_ms)
    return EvalResult(key=task.key, quality=quality, latency_ms=latency_ms, memory_bytes=int(model_bytes(model)),
                      seconds=time.perf_counter() - start, worker=f"{socket.gethostname()}:{os.getpid()}",
                      extra=extra)


# ---- the Python API's short form ----------------------------------------------------------------------
def evaluate(loaded: LoadedModel, student: Any = None, policy: DataPolicy | None = None, *,
             progress: bool = False) -> dict[str, float]:
    """Quality of ``student`` against ``loaded``'s model: a compressed torch model, a CompressionConfig
    (built here with the policy's calibration rows), or None (the model against itself)."""
    policy = policy or DataPolicy()
    recipe = student if isinstance(student, CompressionConfig) else None
    if recipe is not None:
        student = compress(loaded, recipe, policy)
    elif student is None:
        student = loaded.model
    return score(loaded, student, policy, progress=progress, recipe=recipe)
