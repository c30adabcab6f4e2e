"""The jobs table on SQLite and PostgreSQL: migrations, CRUD, and jobs surviving a new app instance."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text

from search.spec import SearchSpec
from service.db import driver_url, make_engine, migrate, session_factory
from service.job_store import JobNotFound, JobStore
from service.main import create_app
from service.tables import CANCELLED, DONE, RUNNING
from tests.service.conftest import TINY, make_settings


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh database: a SQLite file, or a schema of its own (dropped afterwards) on the private PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.db'}"
        return
    postgres = request.getfixturevalue("postgres_url")  # started for the session; fails the test if it cannot
    schema = f"devicefit_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(driver_url(postgres))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        # every table (jobs, Alembic's version, Optuna's) lands in the private schema
        yield f"{postgres}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_migration_creates_the_jobs_table_and_is_idempotent(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    migrate(engine)  # a restart runs it again
    names = inspect(engine).get_table_names()
    assert "devicefit_jobs" in names and "devicefit_alembic_version" in names
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM devicefit_alembic_version")).scalar() == "0001"
    engine.dispose()


def test_store_round_trip_and_final_status_is_kept(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    store = JobStore(session_factory(engine))
    spec = SearchSpec(**TINY)
    store.create(spec, job_id="a1", storage_url="sqlite:///x.db")
    store.create(spec, job_id="b2", storage_url="sqlite:///x.db")
    assert store.get("a1").status == "queued"
    assert SearchSpec.model_validate_json(store.get("a1").spec) == spec
    store.update("a1", status=RUNNING)
    store.update("a1", status=DONE)
    store.update("a1", status=RUNNING, error="late report")  # a finished job stays finished
    assert store.get("a1").status == DONE and store.get("a1").error is None
    store.update("b2", status=CANCELLED, error="cancelled by request")
    rows, total = store.page(offset=0, limit=10)
    assert total == 2 and [r.id for r in rows] == ["b2", "a1"]
    assert store.page(offset=0, limit=10, status=DONE)[1] == 1
    with pytest.raises(JobNotFound):
        store.get("zz")
    engine.dispose()


def test_jobs_survive_a_new_app_instance(database_url, tmp_path):
    settings = make_settings(tmp_path, database_url=database_url)
    with TestClient(create_app(settings)) as first:
        job = first.post("/search", json=TINY).json()["id"]
        first.delete(f"/search/{job}")
    with TestClient(create_app(settings)) as second:
        detail = second.get(f"/search/{job}").json()
        assert detail["status"] == "cancelled" and detail["spec"]["trials"] == TINY["trials"]
        assert second.get("/search").json()["total"] == 1
