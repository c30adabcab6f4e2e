"""Request-scoped access to the app's parts (set up once in create_app)."""

from __future__ import annotations

from fastapi import Header, Request

from service.security import check_token


# async: trivial dependencies run on the event loop instead of costing a thread hop per request
async def services(request: Request):
    return request.app.state.services


async def require_token(request: Request, authorization: str | None = Header(None, include_in_schema=False)) -> None:
    """Mutating routes: when the server has a token, the request must carry it."""
    check_token(authorization, request.app.state.services.settings)
