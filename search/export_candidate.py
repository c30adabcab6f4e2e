"""Ship a candidate: rebuild it through the one evaluation path and write it in a runtime's format;
score an export from disk with the data policy it was scored with.

``export_candidate`` is what ``search-cli export``, the service's downloads and the Python API call:
the model it writes is built by ``search.evaluation.build`` from (model, recipe, data policy, recorded
recovery), exactly as the search built the model it scored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from search.data_policy import DataPolicy
from search.errors import DeviceFitError
from search.evaluation import Evaluation, build, loaded_model, score
from search.recipe import CompressionConfig, parse_recipe

POLICY_FILE = "data_policy.json"  # beside a devicefit export: how its quality was scored


def export_candidate(model_ref: str, recipe: CompressionConfig, out_dir: str | os.PathLike, *,
                     policy: DataPolicy | None = None, recovery: dict[str, Any] | None = None,
                     format: str = "devicefit", loaded: Any = None, compressed: Any = None) -> Path:
    """Build the candidate (unless ``compressed`` is given) and write it to ``out_dir`` in ``format``.

    ``loaded`` defaults to the process-wide cached model of ``model_ref``.
    """
    from search.exporters import check_format, export_model

    fmt = check_format(format)  # an unknown format fails before the build
    policy = policy or DataPolicy()
    loaded = loaded or loaded_model(model_ref)
    recipe.resolve(loaded.graph)
    if compressed is None:
        compressed = build(loaded, recipe, policy, recovery)
    return export_model(loaded, compressed, recipe, out_dir, fmt, policy=policy,
                        extra_files={POLICY_FILE: json.dumps(policy.record(), indent=2) + "\n"})


def export_source(ref: str) -> str | None:
    """The model a devicefit or hf export was made from (its recorded "source"), or None if ref is no export."""
    from search.exporters.hf import hf_export_record

    path = Path(ref).expanduser()
    record = hf_export_record(path) if path.is_dir() else None
    if record is not None:
        return _recorded_source(ref, record.get("source"))
    meta = path / "devicefit.json"
    if not (path.is_dir() and meta.is_file() and (path / "recipe.json").is_file()):
        return None
    try:
        source = json.loads(meta.read_text()).get("source")
    except json.JSONDecodeError:
        raise DeviceFitError(f"{str(meta)!r} is not valid JSON; is {ref!r} a complete devicefit export?") from None
    return _recorded_source(ref, source)


def _recorded_source(ref: str, source: str | None) -> str:
    if not source:
        raise DeviceFitError(f"export {ref!r} does not record the model it was made from; evaluate that model "
                             "with the export's recipe.json instead (--model SOURCE --recipe recipe.json)")
    return str(source)


def recorded_policy(ref: str) -> DataPolicy | None:
    """The data policy an export was scored with (None for exports that predate the record)."""
    path = Path(ref).expanduser() / POLICY_FILE
    if not path.is_file():
        return None
    try:
        return DataPolicy.from_record(json.loads(path.read_text()))
    except (json.JSONDecodeError, ValueError) as exc:
        raise DeviceFitError(f"{str(path)!r} is not a valid data policy: {exc}") from None


def evaluate_export(ref: str, policy: DataPolicy | None = None, *, progress: bool = False) -> Evaluation:
    """Quality of a saved export against the model it was made from, on ``policy`` (default: the one the
    export records, so the number reproduces the search's), and its exact memory."""
    from search.exporters.hf import hf_export_record, load_hf_export
    from search.memory import memory_report
    from search.models import load_model

    source = export_source(ref)
    if source is None:
        raise DeviceFitError(f"{ref!r} is not a devicefit export (no devicefit.json and recipe.json)")
    policy = policy or recorded_policy(ref) or DataPolicy()
    teacher = loaded_model(source)
    hf = hf_export_record(ref)
    if hf is not None:  # scored as plain transformers loads it
        recipe = parse_recipe(hf["recipe"])
        student = load_hf_export(ref, teacher.graph.is_causal)
    else:
        recipe = parse_recipe((Path(ref).expanduser() / "recipe.json").read_text())
        student = load_model(ref).model
    # a devicefit export is scored as the search scored it; an hf export as plain transformers runs it
    quality = score(teacher, student, policy, progress=progress, recipe=None if hf is not None else recipe)
    return Evaluation(recipe=recipe, policy=policy, quality=quality,
                      memory_bytes=int(memory_report(teacher.graph, recipe).total_bytes), compressed=student)


def export(loaded: Any, recipe: CompressionConfig, out_dir: str | os.PathLike, *, compressed: Any = None,
           policy: DataPolicy | None = None, format: str = "devicefit") -> Path:
    """The Python API's form: export ``loaded`` compressed by ``recipe`` (``compressed`` when already built)."""
    return export_candidate(loaded.ref, recipe, out_dir, policy=policy, format=format, loaded=loaded,
                            compressed=compressed)
