"""Apply a recipe and score it: the steps behind ``search-cli evaluate``/``export`` and the public API.

Calibration rows (for Wanda scores and width-pruning importance) come from the
"calib" part of the text and quality is measured on the disjoint "eval" part,
both with the same number of samples and sequence length.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.compress import apply
from search.errors import DeviceFitError
from search.recipe import CompressionConfig

if TYPE_CHECKING:
    import torch

    from search.models import LoadedModel
    from search.space.graph import ModelGraph

TextSource = str | os.PathLike | None


@dataclass
class RecipeEvaluation:
    """What ``evaluate_recipe`` found: quality metrics, exact memory, and the compressed model."""

    recipe: CompressionConfig
    quality: dict[str, float]
    memory_bytes: int
    compressed: Any = field(repr=False)  # torch.nn.Module

    def as_json(self) -> dict[str, Any]:
        # a student broken enough to overflow (NaN/inf) reads as null: JSON has no infinities
        quality = {k: (v if math.isfinite(v) else None) for k, v in self.quality.items()}
        return {"quality": quality, "memory_bytes": self.memory_bytes, "recipe": self.recipe.model_dump(mode="json")}


def check_sizes(graph: ModelGraph, samples: int, seq_len: int) -> None:
    """Refuse sample counts and sequence lengths the model cannot take, before any heavy work."""
    if samples < 1:
        raise DeviceFitError(f"number of samples {samples} must be at least 1")
    if seq_len > graph.max_positions:
        raise DeviceFitError(f"sequence length {seq_len} exceeds the model's maximum of {graph.max_positions} "
                             f"positions; use --seq-len {graph.max_positions} or less")


def _seq_len_for(loaded: LoadedModel, seq_len: int) -> int:
    check_sizes(loaded.graph, 1, seq_len)
    return seq_len


def calibration_for(loaded: LoadedModel, text: TextSource = None, samples: int = 16,
                    seq_len: int = 128) -> torch.Tensor:
    """Token rows from the calibration part, for the transforms that look at activations."""
    from search.data import calibration_batches

    return calibration_batches(loaded.tokenizer, text, "calib", samples, _seq_len_for(loaded, seq_len))


def needs_calibration(recipe: CompressionConfig) -> bool:
    """Only Wanda scores and width-pruning importance look at activations; the rest is data-free."""
    return (recipe.width.mlp < 1 or recipe.width.heads < 1
            or any(s.sparsity > 0 and s.sparsity_score == "wanda" for s in recipe.layers.values()))


def calibration_if_needed(loaded: LoadedModel, recipe: CompressionConfig, text: TextSource = None,
                          samples: int = 16, seq_len: int = 128) -> torch.Tensor | None:
    return calibration_for(loaded, text, samples, seq_len) if needs_calibration(recipe) else None


def evaluator_for(loaded: LoadedModel, text: TextSource = None, samples: int = 16, seq_len: int = 128) -> Any:
    """A QualityEvaluator of ``loaded`` on the evaluation part of the text."""
    from search.data import calibration_batches
    from search.evaluators.quality import QualityEvaluator

    batches = calibration_batches(loaded.tokenizer, text, "eval", samples, _seq_len_for(loaded, seq_len))
    return QualityEvaluator(loaded, batches)


def evaluate(loaded: LoadedModel, student: Any = None, *, text: TextSource = None, samples: int = 16,
             seq_len: int = 128, progress: bool = False) -> dict[str, float]:
    """Quality of ``student`` against ``loaded``'s model: ``{"cosine"}`` or ``{"kl", "perplexity"}``.

    ``student`` is a compressed torch model, a CompressionConfig (applied here,
    with calibration data), or None (the model against itself: the baseline).
    """
    if isinstance(student, CompressionConfig):
        student.resolve(loaded.graph)
        calibration = calibration_if_needed(loaded, student, text, samples, seq_len)
        student = apply(loaded.model, student, calibration=calibration)
    elif student is None:
        student = loaded.model
    return evaluator_for(loaded, text, samples, seq_len).evaluate(student, progress=progress)


def evaluate_recipe(loaded: LoadedModel, recipe: CompressionConfig, *, text: TextSource = None,
                    samples: int = 16, seq_len: int = 128, progress: bool = False) -> RecipeEvaluation:
    """Apply ``recipe`` to ``loaded`` and measure quality (eval text) and exact memory (from the graph)."""
    from tqdm.auto import tqdm

    from search.memory import memory_report

    recipe.resolve(loaded.graph)
    memory = memory_report(loaded.graph, recipe)  # cheap, and fails before any heavy work
    calibration = calibration_if_needed(loaded, recipe, text, samples, seq_len)
    evaluator = evaluator_for(loaded, text, samples, seq_len)
    # disable=None: the bar shows on a terminal only, so piped stderr carries nothing but errors
    with tqdm(total=3, desc="applying recipe", file=_stderr(), disable=None if progress else True,
              bar_format="{desc} [{n}/{total}] {elapsed}", leave=False) as bar:
        compressed = apply(loaded.model, recipe, calibration=calibration)
        bar.set_description("running the original model")
        bar.update()
        evaluator.prepare()
        bar.set_description("scoring the compressed model")
        bar.update()
        quality = evaluator.evaluate(compressed)
        bar.update()
    return RecipeEvaluation(recipe=recipe, quality=quality, memory_bytes=int(memory.total_bytes),
                            compressed=compressed)


def export_source(ref: str) -> str | None:
    """The model a devicefit export was made from (its devicefit.json "source"), or None if ref is no export."""
    import json

    path = Path(ref).expanduser()
    meta = path / "devicefit.json"
    if not (path.is_dir() and meta.is_file() and (path / "recipe.json").is_file()):
        return None
    try:
        source = json.loads(meta.read_text()).get("source")
    except json.JSONDecodeError:
        raise DeviceFitError(f"{str(meta)!r} is not valid JSON; is {ref!r} a complete devicefit export?") from None
    if not source:
        raise DeviceFitError(f"export {ref!r} does not record the model it was made from; evaluate that model "
                             "with the export's recipe.json instead (--model SOURCE --recipe recipe.json)")
    return str(source)


def evaluate_export(ref: str, *, text: TextSource = None, samples: int = 16, seq_len: int = 128,
                    progress: bool = False) -> RecipeEvaluation:
    """Quality of a saved export against the model it was made from, and its exact memory."""
    from search.memory import memory_report
    from search.models import load_model
    from search.recipe import parse_recipe

    source = export_source(ref)
    if source is None:
        raise DeviceFitError(f"{ref!r} is not a devicefit export (no devicefit.json and recipe.json)")
    recipe = parse_recipe((Path(ref).expanduser() / "recipe.json").read_text())
    teacher = load_model(source)
    student = load_model(ref).model
    quality = evaluator_for(teacher, text, samples, seq_len).evaluate(student, progress=progress)
    return RecipeEvaluation(recipe=recipe, quality=quality,
                            memory_bytes=int(memory_report(teacher.graph, recipe).total_bytes), compressed=student)


def export(loaded: LoadedModel, recipe: CompressionConfig, out_dir: str | os.PathLike, *,
           compressed: Any = None, text: TextSource = None, samples: int = 16, seq_len: int = 128) -> Path:
    """Save ``loaded`` compressed by ``recipe`` to ``out_dir`` (safetensors + recipe + config).

    Pass ``compressed`` when you already applied the recipe; otherwise it is applied here.
    """
    from search.compress.export import export_compressed

    recipe.resolve(loaded.graph)
    if compressed is None:
        calibration = calibration_if_needed(loaded, recipe, text, samples, seq_len)
        compressed = apply(loaded.model, recipe, calibration=calibration)
    out = Path(out_dir).expanduser()
    export_compressed(loaded, compressed, recipe, out)
    return out


def _stderr() -> Any:
    import sys

    return sys.stderr
