"""The service's start-up work happens on a thread at start, not in the first requests."""

from __future__ import annotations

import gc
import time

from fastapi.testclient import TestClient

from service.main import create_app
from tests.service.conftest import make_settings


def test_start_opens_the_storage_and_freezes_the_start_up_heap(tmp_path):
    settings = make_settings(tmp_path)
    app = create_app(settings)
    studies = app.state.services.studies
    assert settings.optuna_storage not in studies._storages  # nothing happens at import or create_app
    with TestClient(app):
        deadline = time.monotonic() + 30
        while settings.optuna_storage not in studies._storages and time.monotonic() < deadline:
            time.sleep(0.05)
        assert settings.optuna_storage in studies._storages  # the first poll will not open it
        while not gc.get_freeze_count() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gc.get_freeze_count() > 10_000  # the libraries' objects: full collections skip them
