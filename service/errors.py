"""How errors become HTTP answers: always a JSON body {"detail": "<one line naming the field>"}.

Bad input is never a 5xx: validation errors are 422 naming the field,
DeviceFitError 400 (404 for a missing job or candidate, 401 for a bad token).
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from search.errors import DeviceFitError
from service.job_store import JobNotFound
from service.security import Unauthorized

log = logging.getLogger("devicefit.service")


class NotFound(DeviceFitError):
    """Something addressed by the URL does not exist (answered 404)."""


def describe(errors: list[dict]) -> str:
    """'body.budget.max_latency: <what is wrong>' for the first error (the most useful one)."""
    if not errors:
        return "invalid request"
    err = errors[0]
    # odd keys (control characters, spaces) are quoted so the message stays one readable line
    loc = [str(p) if re.fullmatch(r"[\w-]+", str(p)) else ascii(str(p)) for p in err.get("loc", ())]
    where = ".".join(loc) or "request"
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{where}: {msg}{more}"


def _status_of(exc: DeviceFitError) -> int:
    if isinstance(exc, JobNotFound | NotFound):
        return 404
    if isinstance(exc, Unauthorized):
        return 401
    return 400


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": describe(list(exc.errors()))}, status_code=422)

    @app.exception_handler(ValidationError)
    async def _pydantic(_req: Request, exc: ValidationError) -> JSONResponse:
        errors = [dict(e, loc=("body", *e["loc"])) for e in exc.errors()]
        return JSONResponse({"detail": describe(errors)}, status_code=422)

    @app.exception_handler(DeviceFitError)
    async def _user_error(_req: Request, exc: DeviceFitError) -> JSONResponse:
        status = _status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"detail": str(exc).splitlines()[0] if str(exc) else type(exc).__name__},
                            status_code=status, headers=headers)

    @app.exception_handler(Exception)
    async def _bug(req: Request, exc: Exception) -> JSONResponse:
        # a bug, not the user's fault: logged with its traceback, answered without it
        log.exception("unhandled error on %s %s", req.method, req.url.path)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); the server log has the details"},
                            status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 400 and "parsing the body" in detail:  # e.g. bytes that are not UTF-8
            detail = "body: cannot be read as JSON; send a UTF-8 JSON SearchSpec"
        if exc.status_code == 405:  # Starlette names only the first matching route's methods
            allowed = allowed_methods(req)
            headers["Allow"] = ", ".join(allowed)
            detail = f"method: {req.method} is not allowed here; use {' or '.join(allowed)}"
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=headers or None)


def allowed_methods(req: Request) -> list[str]:
    """Every method some route serves at this path (asked of the router, so nested routers count)."""
    from starlette.routing import Match

    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**req.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in req.app.router.routes):
            allowed.append(method)
    return allowed
