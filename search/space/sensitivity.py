"""Per-group sensitivity: how much quality drops when one layer group alone is compressed.

Measured once per model, data and granularity with the stage-2 quality proxy
(one evaluation per group plus the uncompressed baseline), then cached on disk
under <results>/.cache/ so later searches of the same model start with it.
The engine uses it to seed mixed-precision recipes (low bits where they hurt least).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from search.executor import EvalTask, Executor
from search.results import results_dir
from search.space.suggest import RecipeSpace
from search.spec import SearchSpec

PROBE_BITS = 4  # the compression each group gets alone: 4-bit weights (the lowest width >= 4 in the space)


def _model_version(ref: str) -> str:
    """The reference plus the config's mtime for local models, so edited checkpoints re-measure."""
    path = Path(ref).expanduser()
    config = path / "config.json" if path.is_dir() else path
    return f"{ref}@{config.stat().st_mtime_ns}" if config.is_file() else ref


def probe_bits(space: RecipeSpace) -> int:
    candidates = [b for b in space.space.bits if 4 <= b < 16]
    return min(candidates) if candidates else min(space.space.bits)


def cache_path(spec: SearchSpec, space: RecipeSpace) -> Path:
    from search.evaluation import proxy_rows

    key = json.dumps({"model": _model_version(spec.model), "text": spec.calibration_text,
                      "n": proxy_rows(spec.data_policy), "seq_len": spec.seq_len, "granularity": spec.space.granularity,
                      "groups": [g.key for g in space.groups], "probe": probe_bits(space),
                      # only when set, so the caches of searches without it keep their names
                      **({"eval_text": spec.eval_text} if spec.eval_text is not None else {})}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    return results_dir() / ".cache" / f"sensitivity-{digest}.json"


def layer_sensitivity(spec: SearchSpec, space: RecipeSpace, executor: Executor,
                      metric: tuple[str, str]) -> dict[str, float]:
    """Group label -> quality loss of compressing that group alone (bigger = more sensitive)."""
    path = cache_path(spec, space)
    if path.is_file():
        try:
            return json.loads(path.read_text())["sensitivity"]
        except (json.JSONDecodeError, KeyError):
            pass  # a damaged cache is simply measured again
    bits = probe_bits(space)
    recipes = {"_baseline": space.recipe(space.params())}
    for group in space.groups:
        recipes[group.label] = space.recipe(space.params(per_group={group.label: {"bits": bits}}))
    futures = {label: executor.submit(EvalTask(study="sensitivity", trial=i, stage="proxy", spec=spec, recipe=r))
               for i, (label, r) in enumerate(recipes.items())}
    name, direction = metric
    loss = {label: (-1 if direction == "max" else 1) * f.result().quality[name] for label, f in futures.items()}
    base = loss.pop("_baseline")
    sensitivity = {label: value - base for label, value in loss.items()}
    _write(path, {"sensitivity": sensitivity, "probe_bits": bits, "model": spec.model, "metric": name})
    return sensitivity


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)
