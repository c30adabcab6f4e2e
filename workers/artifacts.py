"""Downloads built by a worker: one trial of a search, exported and packed as a .tar.gz.

The service asks for an archive by (spec, trial number) and a target path in its artifact directory
(a directory the workers share with it); the worker reads the trial's record from the Optuna study,
re-builds the candidate through the engine's one export path with the data policy and recovery the
trial recorded, and moves the finished archive into place atomically: a half-written archive is
never visible under the target name.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from search.errors import DeviceFitError
from search.spec import SearchSpec


def trial_record(spec: SearchSpec, trial: int) -> dict[str, Any]:
    """The candidate record the engine stored on a finished trial of spec's study."""
    import optuna

    from search.candidates import CANDIDATE_ATTR
    from search.study import make_storage, storage_url

    study = optuna.load_study(study_name=spec.study_name, storage=make_storage(storage_url(spec)))
    trials = [t for t in study.get_trials(deepcopy=False) if t.number == trial]
    record = trials[0].user_attrs.get(CANDIDATE_ATTR) if trials else None
    if not trials or trials[0].state != optuna.trial.TrialState.COMPLETE or not isinstance(record, dict):
        raise DeviceFitError(f"trial {trial} of {spec.study_name} is not a finished candidate")
    return record


def build_archive(spec: SearchSpec, trial: int, target: Path, fmt: str = "devicefit") -> Path:
    """Export trial `trial` of the spec's search to `target` (.tar.gz) in format `fmt`; returns target."""
    from search.data_policy import DataPolicy
    from search.engine import export_candidate
    from search.recipe import CompressionConfig

    record = trial_record(spec, trial)
    recipe = CompressionConfig.model_validate(record["recipe"])
    policy = spec.data_policy
    if record.get("data"):  # the policy the candidate was scored with, as its trial recorded it
        policy = DataPolicy.from_record(record["data"], spec.calibration_text, full_eval_text=spec.eval_text)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".building-") as tmp:
        folder = Path(tmp) / target.name.removesuffix(".tar.gz")
        export_candidate(spec.model, recipe, folder, policy=policy, recovery=record.get("recovery") or {},
                         format=fmt)
        partial = Path(tmp) / "archive.tar.gz"
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(folder, arcname=folder.name)
        shutil.move(partial, target)  # a rename within one filesystem: atomic
    return target
