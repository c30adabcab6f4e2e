"""The service's start-up work happens on a thread at start, not in the first requests."""

from __future__ import annotations

import gc
import time

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect

from search.study import make_storage
from service.main import create_app
from tests.service.conftest import make_settings


def _until(check, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)
    return check()


def test_start_opens_a_storage_optuna_set_up_and_freezes_the_start_up_heap(tmp_path):
    settings = make_settings(tmp_path)
    make_storage(settings.optuna_storage)  # e.g. a worker ran a search on this database before
    app = create_app(settings)
    studies = app.state.services.studies
    assert settings.optuna_storage not in studies._storages  # nothing happens at import or create_app
    with TestClient(app):
        assert _until(lambda: settings.optuna_storage in studies._storages)  # the first poll will not open it
        assert _until(lambda: gc.get_freeze_count() > 10_000)  # the libraries' objects: full collections skip them


def test_start_never_creates_optuna_tables(tmp_path):
    """A worker may be creating them for the first search at this moment: two creators collide on SQLite."""
    settings = make_settings(tmp_path)
    app = create_app(settings)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
    assert settings.optuna_storage not in app.state.services.studies._storages  # shutdown waited for the warm-up
    tables = inspect(create_engine(settings.optuna_storage)).get_table_names()
    assert "devicefit_jobs" in tables and "studies" not in tables
