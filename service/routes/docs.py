"""GET /docs: Swagger UI on the app's OpenAPI schema, its files served by the app (no CDN).

The files come from the swagger-ui-py package; mount() adds them at /swagger. The page starts
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
    """Swagger UI 5 (it reads OpenAPI 3.1) as packaged by swagger-ui-py; found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(next(iter(spec.submodule_search_locations))) / "static"
    return static if (static / "swagger-ui-bundle.js").is_file() else None


def mount(app: FastAPI) -> None:
    files = swagger_files()
    if files is not None:
        app.mount("/swagger", StaticFiles(directory=files), name="swagger")


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    if swagger_files() is None:
        return HTMLResponse("<p>Swagger UI is not installed (pip install swagger-ui-py); the schema is at "
                            "<a href=\"/openapi.json\">/openapi.json</a>.</p>", status_code=404)
    return templates.TemplateResponse(request, "docs.html", {})
