"""Where searches keep their results: the Optuna storage and each study's front.json.

Layout (the base directory is ``./devicefit-results`` or $DEVICEFIT_RESULTS):

    devicefit-results/studies.db          Optuna storage (SQLite) unless --storage names another
    devicefit-results/<study>/front.json  the study's Pareto front: recipes + metrics + the spec

front.json is rewritten atomically after every change of the front, so a reader
(or a search interrupted mid-way) never sees a half-written file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from search.errors import SpecError
from search.recipe import CompressionConfig, parse_recipe
from search.spec import SearchSpec, parse_spec

FRONT_FILE = "front.json"


def results_dir() -> Path:
    return Path(os.environ.get("DEVICEFIT_RESULTS", "devicefit-results"))


def default_storage() -> str:
    """SQLite file in the results directory (created on first use)."""
    base = results_dir()
    base.mkdir(parents=True, exist_ok=True)
    path = base / "studies.db"
    return f"sqlite:///{path if path.is_absolute() else path.as_posix()}"


def study_dir(study: str) -> Path:
    if not re.fullmatch(r"[\w.@+-]+", study):
        raise SpecError(f"study name {study!r} may only hold letters, digits and . _ - + @")
    return results_dir() / study


def write_front(study: str, payload: dict[str, Any]) -> Path:
    """Write <results>/<study>/front.json atomically; returns its path."""
    folder = study_dir(study)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / FRONT_FILE
    fd, tmp = tempfile.mkstemp(prefix=".front-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def front_path(study_or_path: str | Path) -> Path:
    """front.json of a study name, a study directory or the file itself."""
    path = Path(study_or_path)
    if path.is_file():
        return path
    if path.is_dir() and (path / FRONT_FILE).is_file():
        return path / FRONT_FILE
    candidate = study_dir(str(study_or_path)) / FRONT_FILE
    if candidate.is_file():
        return candidate
    known = sorted(p.parent.name for p in results_dir().glob(f"*/{FRONT_FILE}"))
    hint = f"; saved studies: {', '.join(known[-5:])}" if known else f"; no saved studies under {results_dir()}"
    raise SpecError(f"no saved front for {str(study_or_path)!r}{hint}")


def load_front(study_or_path: str | Path) -> dict[str, Any]:
    """The saved front.json of a study (by name, directory or path) as a dict."""
    path = front_path(study_or_path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SpecError(f"{str(path)!r} is not valid JSON: {exc}") from None
    data.setdefault("results_path", str(path))
    return data


def find_candidate(study: str | Path, k: int) -> tuple[SearchSpec, CompressionConfig, dict[str, Any]]:
    """Candidate k (0-based, as `search-cli show` numbers them) of a saved front."""
    data = load_front(study)
    front = data.get("front", [])
    if not front:
        raise SpecError(f"study {data.get('study', study)!r} has an empty front")
    if not 0 <= k < len(front):
        raise SpecError(f"candidate {k} does not exist: study {data.get('study', study)!r} has candidates "
                        f"0..{len(front) - 1}")
    entry = front[k]
    metrics = {key: value for key, value in entry.items() if key != "recipe"}
    return parse_spec(data["spec"]), parse_recipe(entry["recipe"]), metrics
