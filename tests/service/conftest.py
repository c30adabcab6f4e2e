"""Fixtures for the service tests: an app on a temporary SQLite database, with or without a broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings


def make_settings(tmp: Path, **changes) -> Settings:
    base = Settings(database_url=f"sqlite:///{tmp / 'jobs.db'}", artifact_dir=tmp / "artifacts", dispatch=False)
    return base.with_(**changes)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def client(settings):
    """A client of an app that stores jobs but sends them nowhere (no broker needed)."""
    with TestClient(create_app(settings)) as c:
        yield c


TINY = {"model": "demo:minilm", "device": "rpi5", "workload": "encode:128", "budget": {"max_latency": "200ms"},
        "trials": 6}
