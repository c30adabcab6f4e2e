"""Service settings, read from DEVICEFIT_* environment variables (or passed to create_app)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_DB_FILE = Path.home() / ".devicefit" / "service.db"


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _roots(value: str | None) -> tuple[Path, ...]:
    parts = [p for p in (value or "").split(os.pathsep) if p.strip()]
    return tuple(Path(p).expanduser().resolve() for p in parts)


@dataclass(frozen=True)
class Limits:
    """A ceiling on every cost a request can ask for (service/admission.py refuses what is over)."""

    max_trials: int = 2000
    max_seq_len: int = 2048  # tokens per calibration sequence
    max_calib_samples: int = 512  # calibration / evaluation sequences
    max_calibration_chars: int = 200_000  # length of a submitted calibration_text (or eval_text)
    max_recovery_steps: int = 2000  # recovery training, per finalist
    max_recovery_s: float = 600.0
    max_search_s: float = 24 * 3600.0  # a search's time_limit (and the default when it has none)

    _ENV = {"max_trials": "DEVICEFIT_MAX_TRIALS", "max_seq_len": "DEVICEFIT_MAX_SEQ_LEN",
            "max_calib_samples": "DEVICEFIT_MAX_CALIB_SAMPLES",
            "max_calibration_chars": "DEVICEFIT_MAX_CALIBRATION_CHARS",
            "max_recovery_steps": "DEVICEFIT_MAX_RECOVERY_STEPS", "max_recovery_s": "DEVICEFIT_MAX_RECOVERY_S",
            "max_search_s": "DEVICEFIT_MAX_SEARCH_S"}

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Limits:
        base = cls()
        return cls(**{name: type(getattr(base, name))(env[var]) for name, var in cls._ENV.items() if env.get(var)})


@dataclass(frozen=True)
class Settings:
    """Everything the app needs to know about its surroundings."""

    # jobs table; the Optuna studies go to `storage_url` (the same database unless set)
    database_url: str = f"sqlite:///{DEFAULT_DB_FILE}"
    storage_url: str | None = None
    # directories a local model path must lie under; empty = only Hub ids and demo: models
    model_roots: tuple[Path, ...] = ()
    # when set, POST/DELETE need `Authorization: Bearer <token>`
    api_token: str | None = None
    # whether submitted models may need custom code from their repository
    trust_remote_code: bool = False
    broker_url: str = "redis://127.0.0.1:6379/0"
    result_backend: str | None = None  # default: the broker URL
    # the Celery task that runs a whole search (workers/tasks.py) and the queue whole searches go to
    search_task: str = "devicefit.run_search"
    search_queue: str = "devicefit.searches"
    max_request_bytes: int = 1_000_000
    limits: Limits = field(default_factory=Limits)
    # measurement queues are named <prefix><device> (workers/queues.py); `measure` needs a worker on one
    device_queue_prefix: str = "devicefit.device."
    # where exported candidates are cached as archives
    artifact_dir: Path = field(default_factory=lambda: Path.home() / ".devicefit" / "artifacts")
    # the archives there are evicted, least recently used first, above this many bytes
    artifact_max_bytes: int = 2 * 10**9
    # the Celery task a worker builds a download with (workers/tasks.py), on the general queue
    export_task: str = "devicefit.export_archive"
    export_queue: str = "devicefit.general"
    # False: jobs are stored but never sent to a broker (tests, fuzzing)
    dispatch: bool = True

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> Settings:
        env = dict(os.environ if env is None else env)
        base = cls()
        values = dict(
            database_url=env.get("DEVICEFIT_DATABASE_URL", base.database_url),
            storage_url=env.get("DEVICEFIT_STORAGE_URL") or None,
            model_roots=_roots(env.get("DEVICEFIT_MODEL_ROOTS")),
            api_token=env.get("DEVICEFIT_API_TOKEN") or None,
            trust_remote_code=_flag(env.get("DEVICEFIT_TRUST_REMOTE_CODE")),
            # DEVICEFIT_BROKER is what the workers read; the service accepts it too
            broker_url=env.get("DEVICEFIT_BROKER_URL") or env.get("DEVICEFIT_BROKER") or base.broker_url,
            result_backend=env.get("DEVICEFIT_RESULT_BACKEND") or None,
            search_task=env.get("DEVICEFIT_SEARCH_TASK", base.search_task),
            search_queue=env.get("DEVICEFIT_SEARCH_QUEUE", base.search_queue),
            max_request_bytes=int(env.get("DEVICEFIT_MAX_REQUEST_BYTES", base.max_request_bytes)),
            limits=Limits.from_env(env),
            artifact_dir=Path(env["DEVICEFIT_ARTIFACT_DIR"]) if env.get("DEVICEFIT_ARTIFACT_DIR") else base.artifact_dir,
            artifact_max_bytes=int(env.get("DEVICEFIT_ARTIFACT_MAX_BYTES") or base.artifact_max_bytes),
        )
        values.update(overrides)
        return cls(**values)

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    @property
    def optuna_storage(self) -> str:
        """Where workers write the trials: an absolute URL, since a worker runs in another directory."""
        from service.db import driver_url

        url = driver_url(self.storage_url or self.database_url)
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
            url = prefix + str(Path(url[len(prefix):]).expanduser().resolve())
        return url

    @property
    def celery_backend(self) -> str:
        return self.result_backend or self.broker_url
