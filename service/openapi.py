"""The OpenAPI schema as the service really answers: every error is {"detail": "<field>: <what to fix>"}.

FastAPI documents validation errors as a list of objects (its HTTPValidationError); this service
answers them, like every other error, with one line naming the field (service/errors.py). The
schema is rewritten once to say so, so a client generated from it parses the real bodies.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA = {"title": "Error", "type": "object", "required": ["detail"],
                "properties": {"detail": {"type": "string", "description": "one line: the field, then what to fix",
                                          "examples": ["body.budget.max_latency: cannot read max_latency "
                                                       "'fast': write a number and a unit, like '200ms'"]}}}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_DEFAULT_TEXT = {"400": "refused input, with the reason", "401": "missing or wrong API token",
                 "404": "not found", "413": "request body over the size limit",
                 "422": "the request does not validate; the message names the field"}


def install(app: FastAPI) -> None:
    def schema() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = error_bodies(get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes))
        return app.openapi_schema

    app.openapi = schema  # type: ignore[method-assign]


def error_bodies(spec: dict[str, Any]) -> dict[str, Any]:
    """Every 4xx response documented with the Error body; FastAPI's list-shaped 422 removed."""
    for path in spec.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                if status.startswith("4"):
                    response["description"] = (response.get("description") if response.get("description")
                                               not in (None, "Validation Error") else _DEFAULT_TEXT.get(status,
                                                                                                        "refused"))
                    response["content"] = {"application/json": {"schema": _ERROR_REF}}
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Error"] = ERROR_SCHEMA
    return spec
