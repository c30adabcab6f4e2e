"""One-time costs of a new service process, paid on a thread at start instead of by the requests.

- The first poll of a search imports Optuna and opens its storage (checks its tables and its schema
  version: about 0.5 s on this host together) and the first list of searches builds the Celery result
  backend and compiles the page's template. Every poller that arrives meanwhile waits for that first
  render, so on a loaded host the first second after a start showed answers of 300-400 ms. The
  storage is opened here only if Optuna has set it up already (opening a fresh one creates its
  tables, which would race a worker creating them for the first search: SQLite then fails one side
  with "table already exists"); otherwise only the imports are done here.
- Then the objects alive after start-up (about 150,000: the imported libraries) are frozen out of the
  garbage collector. A full collection walked all of them with the GIL held, 100-300 ms on a loaded
  2-core host, and every request that arrived meanwhile waited: these pauses were the slowest 1% of
  the answers under 50 pollers. Frozen, they are never scanned (nor collected: they live as long as
  the process anyway); a full collection then walks only what requests created.
Nothing here is needed for correctness: a failure is logged and the first request pays instead.
"""

from __future__ import annotations

import gc
import logging
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("devicefit.service")
_frozen = threading.Event()  # once per process (tests start many apps in one)


def start(services: Any) -> threading.Thread:
    thread = threading.Thread(target=_warm_up, args=(services,), name="devicefit-warm-up", daemon=True)
    thread.start()
    return thread


def _warm_up(services: Any) -> None:
    try:
        from service.routes.pages import templates

        templates.get_template("index.html")
        if services.settings.dispatch:
            services.jobs.dispatcher.celery.backend  # noqa: B018 - builds it (no connection yet)
        url = services.settings.optuna_storage
        if _set_up_already(url):
            services.studies.storage(url)
        else:
            import optuna.storages._rdb.storage  # noqa: F401 - the imports of the first open
    except Exception as exc:  # noqa: BLE001 - e.g. a storage that is down: the first request reports it
        log.warning("warm-up at start failed (the first request will retry): %s", exc)
    if not _frozen.is_set():
        _frozen.set()
        gc.collect()  # garbage of the imports first: what is frozen is never collected
        gc.freeze()


def _set_up_already(url: str) -> bool:
    """Whether Optuna has set up this storage: the last step of its first open stamps alembic_version."""
    import sqlalchemy

    from service.db import driver_url

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return False  # connecting would create the file
    engine = sqlalchemy.create_engine(driver_url(url))
    try:
        return sqlalchemy.inspect(engine).has_table("alembic_version")
    finally:
        engine.dispose()
