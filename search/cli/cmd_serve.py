"""search-cli serve: run the devicefit service (FastAPI app under uvicorn).

Options override the DEVICEFIT_* environment variables the service reads
(service/settings.py). The jobs table is migrated at start. Searches run on
Celery workers: start at least one with `search-cli worker` on the same broker.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from search.errors import SpecError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve", help="run the HTTP service and web page (searches go to Celery workers)",
        description="Serve the devicefit API (POST /search ...) and web page. Searches are run by Celery "
                    "workers on the same broker (`search-cli worker`).")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--database-url", metavar="URL",
                   help="jobs table and Optuna studies: sqlite:///FILE or postgresql://... "
                        "(default $DEVICEFIT_DATABASE_URL or ~/.devicefit/service.db)")
    p.add_argument("--broker", metavar="URL", help="Redis URL of the workers (default $DEVICEFIT_BROKER)")
    p.add_argument("--model-root", action="append", default=[], metavar="DIR",
                   help="directory local model paths must lie under (repeatable; default none: Hub ids "
                        "and demo: models only)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace):
    from service.settings import Settings

    overrides = {}
    if args.database_url:
        overrides["database_url"] = args.database_url
    if args.broker:
        overrides["broker_url"] = args.broker
    if args.model_root:
        roots = [Path(r).expanduser().resolve() for r in args.model_root]
        missing = [str(r) for r in roots if not r.is_dir()]
        if missing:
            raise SpecError(f"--model-root {missing[0]!r} is not a directory")
        overrides["model_roots"] = tuple(roots)
    if not 0 < args.port < 65536:
        raise SpecError(f"--port {args.port} must be between 1 and 65535")
    return Settings.from_env(**overrides)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from service.db import make_engine, migrate
    from service.main import create_app

    settings = settings_from_args(args)
    try:
        migrate(make_engine(settings.database_url))  # fail here, in one line, if the database is unusable
    except Exception as exc:  # noqa: BLE001 - any driver error means a bad URL or a server that is down
        raise SpecError(f"cannot use the database {settings.database_url!r}: {str(exc).splitlines()[0]}") from None
    print(f"devicefit service on http://{args.host}:{args.port} (database {settings.database_url}, "
          f"broker {settings.broker_url}); start workers with `search-cli worker`", file=sys.stderr, flush=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0
