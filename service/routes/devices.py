"""GET /devices and GET /healthz."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends
from sqlalchemy import text

from service.deps import services
from service.schemas import Device, Health

log = logging.getLogger("devicefit.service")
router = APIRouter(tags=["service"])


def device_list() -> list[Device]:
    """The bundled profiles that load; a broken profile file is logged and left out, not the user's fault."""
    from search.errors import DeviceFitError
    from search.hw_profiles.profile import list_profiles, load_profile

    out = []
    for name in list_profiles():
        try:
            p = load_profile(name)
        except DeviceFitError as exc:
            log.error("device profile %s does not load; not listed: %s", name, exc)
            continue
        out.append(Device(name=p.name, description=p.description, kind=p.kind, compute_unit=p.compute_unit,
                          runtime=p.runtime, memory_gb=p.memory_gb, bandwidth_gbs=p.bandwidth_gbs,
                          weight_formats=list(p.weight_formats)))
    return out


@router.get("/devices", response_model=list[Device], summary="Device profiles a search can target")
def devices() -> list[Device]:
    return device_list()


@router.get("/healthz", response_model=Health, summary="Liveness: the database answers")
def healthz(app=Depends(services)) -> Health:
    from importlib.metadata import PackageNotFoundError, version

    try:
        with app.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        db = "ok"
    except Exception as exc:  # noqa: BLE001 - health reports, never raises
        db = f"error: {type(exc).__name__}"
    try:
        ver = version("devicefit")
    except PackageNotFoundError:
        ver = "unknown"
    return Health(status="ok" if db == "ok" else "degraded", database=db,
                  broker=app.settings.broker_url.split("@")[-1] if app.settings.dispatch else None, version=ver)
