"""The Optuna side of a search: storage, study name, directions, sampler with budget constraints.

Budgets reach the sampler as constraints (value <= 0 means within budget), set
on each trial with ``Trial.set_constraint`` (Optuna 5's successor of
``constraints_func``; NSGA-II, TPE and GP all read ``trial.constraints``), so
rejected candidates still teach the sampler where the feasible region lies.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from search.errors import SpecError
from search.results import default_storage
from search.spec import SearchSpec

# fields that define what a study searches; the rest (how long, where stored) may change on --resume
_IDENTITY_FIELDS = ("model", "device", "workload", "budget", "objectives", "space", "calibration_text",
                    "calib_samples", "seq_len", "measure")


def spec_identity(spec: SearchSpec) -> dict[str, Any]:
    identity = spec.model_dump(mode="json", include=set(_IDENTITY_FIELDS))
    if spec.eval_text is not None:  # only when given: the names of studies without one stay as they were
        identity["eval_text"] = spec.eval_text
    return identity


def base_study_name(spec: SearchSpec) -> str:
    """Readable and stable: '<model>-<device>-<workload>-<hash of what is searched>'."""
    digest = hashlib.sha1(json.dumps(spec_identity(spec), sort_keys=True).encode()).hexdigest()[:6]
    model = spec.model.rstrip("/").split("/")[-1].removeprefix("demo:").removesuffix(".json")
    raw = f"{model}-{spec.device}-{spec.workload}-{digest}"
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in raw)


def storage_url(spec: SearchSpec) -> str:
    return spec.storage or default_storage()


MEMORY_STORAGE = "memory://"  # Optuna's in-memory storage: fast, gone with the process (tests, benchmarks)
_memory_storages: dict[str, Any] = {}


def make_storage(url: str) -> Any:
    import optuna

    if url == MEMORY_STORAGE:
        return _memory_storages.setdefault(url, optuna.storages.InMemoryStorage())
    try:
        if url.startswith("sqlite"):
            # generous lock timeout: several processes may share one SQLite file
            storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
            _fast_sqlite(storage.engine)
            return storage
        return optuna.storages.RDBStorage(_with_installed_driver(url))
    except Exception as exc:  # noqa: BLE001 - any driver/connection failure is a bad storage URL
        raise SpecError(f"cannot open storage {url!r}: {str(exc).splitlines()[0]}") from None


def _with_installed_driver(url: str) -> str:
    """'postgresql://' means psycopg (v3) to SQLAlchemy 2.1; use psycopg2 when only that is installed."""
    import importlib.util

    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    return url


def _fast_sqlite(engine: Any) -> None:
    """WAL journal without fsync per commit: Optuna commits once per parameter, and on a
    slow disk each fsync'd commit costs ~15 ms (a second per trial). WAL keeps the file
    consistent on a crash; at worst the last few trials are lost, and --resume redoes them."""
    import sqlalchemy

    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sqlalchemy.event.listen(engine, "connect", pragmas)
    engine.dispose()  # connections opened before the listener reconnect with the pragmas


def choose_study_name(spec: SearchSpec, storage: Any, resume: bool) -> str:
    """The study to use: spec.study_name, or '<base>' / '<base>-2' ... (the latest one when resuming)."""
    import optuna

    existing = set(optuna.get_all_study_names(storage))
    if spec.study_name:
        if resume and spec.study_name not in existing:
            raise SpecError(f"cannot resume: no study named {spec.study_name!r} in the storage")
        return spec.study_name
    base = base_study_name(spec)
    names = [base] + [f"{base}-{i}" for i in range(2, 10_000)]
    taken = [n for n in names if n in existing]
    if resume:
        if not taken:
            raise SpecError(f"cannot resume: no earlier study of this search ({base}) in the storage; "
                            "run it without --resume first")
        return taken[-1]
    return next(n for n in names if n not in existing)


def directions(spec: SearchSpec, metric_direction: str) -> list[str]:
    quality = "maximize" if metric_direction in ("max", "maximize") else "minimize"
    return [quality if objective == "quality" else "minimize" for objective in spec.objectives]


def make_sampler(spec: SearchSpec, population: int) -> Any:
    import optuna

    seed, name = spec.seed, spec.sampler
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(multivariate=True, seed=seed,
                                          n_startup_trials=min(10, max(2, spec.trials // 4)))
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed,
                                         n_startup_trials=min(10, max(2, spec.trials // 4)))
    return optuna.samplers.RandomSampler(seed=seed)


def population_size(trials: int) -> int:
    """NSGA-II generation size: small enough for several generations within the trial budget."""
    return max(8, min(50, trials // 5))


def open_study(spec: SearchSpec, metric_direction: str, *, resume: bool, evaluations: int | None = None) -> Any:
    """Create (or, resuming, load and check) the study; returns it. Spec is kept as a study attribute."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = make_storage(storage_url(spec))
    name = choose_study_name(spec, storage, resume)
    # a generation is sized by the trials that will really be evaluated, not by an open-ended trial count
    sampler = make_sampler(spec, population_size(min(spec.trials, evaluations or spec.trials)))
    study = optuna.create_study(storage=storage, study_name=name, sampler=sampler, load_if_exists=True,
                                directions=directions(spec, metric_direction))
    stored = study.user_attrs.get("spec")
    if stored is None:
        study.set_user_attr("spec", spec.model_dump(mode="json"))
    elif json.dumps(spec_identity(SearchSpec.model_validate(stored)), sort_keys=True) != json.dumps(
            spec_identity(spec), sort_keys=True):
        raise SpecError(f"study {name!r} was started with a different model/device/budget/space; "
                        "use the same options to resume it, or --study NEW_NAME for a new search")
    return study


def fail_stale_trials(study: Any) -> int:
    """Trials left RUNNING by an interrupted search can never finish: mark them failed."""
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    return len(stale)
