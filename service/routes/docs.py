"""GET /docs: Swagger UI on the app's OpenAPI schema, its files served by the app (no CDN).

The files come from the swagger-ui-bundle package; mount() adds them at /swagger. The page starts
Swagger UI from /static/swagger-init.js, not an inline script, so it works under the pages' CSP.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")


def swagger_files() -> Path | None:
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    return Path(swagger_ui_path)


def mount(app: FastAPI) -> None:
    files = swagger_files()
    if files is not None:
        app.mount("/swagger", StaticFiles(directory=files), name="swagger")


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    if swagger_files() is None:
        return HTMLResponse("<p>Swagger UI is not installed (pip install swagger-ui-bundle); the schema is at "
                            "<a href=\"/openapi.json\">/openapi.json</a>.</p>", status_code=404)
    return templates.TemplateResponse(request, "docs.html", {})
