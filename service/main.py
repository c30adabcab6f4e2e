"""The FastAPI app: ``create_app(settings)`` builds one; ``app`` is the one uvicorn serves by default.

Importing this module reads no database and imports no torch: the jobs table is
migrated when the app starts (lifespan), heavy modules load where they are used.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine

from service import errors, openapi, warm_up
from service.archives import Archives
from service.db import make_engine, migrate, session_factory
from service.dispatch import Dispatcher
from service.headers import SecurityHeaders
from service.job_store import JobStore
from service.jobs import Jobs
from service.limits import RequestSizeLimit
from service.response_cache import ResponseCache
from service.routes import candidates, devices, docs, generate, pages, searches
from service.settings import Settings
from service.studies import Studies

HERE = Path(__file__).parent

DESCRIPTION = """Hardware-aware compression search as a service.

Submit a **SearchSpec** to `POST /search` (the same schema as `search-cli` and the workers), follow it
with `GET /search/{id}` and browse its Pareto front of compressed models; download any candidate as an
exported model. When the server sets `DEVICEFIT_API_TOKEN`, `POST` and `DELETE` need
`Authorization: Bearer <token>`. Errors are `{"detail": "<field>: <what to fix>"}`.
"""


@dataclass
class Services:
    """Everything a request handler needs, built once per app."""

    settings: Settings
    engine: Engine
    jobs: Jobs
    studies: Studies
    archives: Archives
    responses: ResponseCache  # GET /search/{id} bodies
    pages: ResponseCache  # the rendered list of searches (GET /), by offset


def build_services(settings: Settings) -> Services:
    engine = make_engine(settings.database_url)
    jobs = Jobs(settings, JobStore(session_factory(engine)), Dispatcher(settings))
    return Services(settings=settings, engine=engine, jobs=jobs, studies=Studies(),
                    archives=Archives(settings.artifact_dir, settings.artifact_max_bytes), responses=ResponseCache(),
                    pages=ResponseCache())


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    services = build_services(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        migrate(services.engine)
        warming = warm_up.start(services)
        yield
        warming.join(timeout=30)  # it may hold a connection to the database
        services.engine.dispose()

    # FastAPI's Swagger/ReDoc pages load their scripts from a CDN: /docs is our own (routes/docs.py)
    app = FastAPI(title="devicefit", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.services = services
    errors.install(app)
    openapi.install(app)
    for module in (searches, candidates, generate, devices, pages, docs):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    docs.mount(app)
    app.add_middleware(RequestSizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(SecurityHeaders)  # outermost: even a 413 or a 500 carries them
    return app


app = create_app()
