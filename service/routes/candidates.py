"""GET /search/{id}/candidates/{k}, and downloads: GET /search/{id}/trials/{trial}/download.

A download is addressed by trial number, which never changes; a front index k does while the search
runs, so /candidates/{k}/download redirects to the trial it names now. The archive is built by a
worker (service/archives.py): until it exists the answer is 202 with Retry-After.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

from search.spec import SearchSpec
from service.deps import services
from service.errors import NotFound
from service.schemas import CandidateDetail, Preparing
from service.views import candidate_detail, download_url

router = APIRouter(prefix="/search/{search_id}", tags=["candidates"])

_K = Path(ge=0, le=100_000, description="index in the front, 0 = first as GET /search/{id} lists them")
_TRIAL = Path(ge=0, le=10_000_000, description="the trial's number in the search (stable)")
_FORMAT = Query(None, description="gguf (llama.cpp), hf (plain transformers) or devicefit; "
                                  "default: the device runtime's format")
ExportFormat = Literal["gguf", "hf", "devicefit"]
RETRY_AFTER_S = 2


def runtime_format(device: str) -> str:
    """The export format of the device's runtime (gguf for llama.cpp devices, else hf)."""
    from search.hw_profiles.profile import load_profile
    from search.hw_profiles.runtimes import runtime_caps

    return runtime_caps(load_profile(device)).export_format


class DownloadsUnavailable(NotFound):
    """No task queue: nobody can build the archive."""


@router.get("/candidates/{k}", response_model=CandidateDetail,
            responses={404: {"description": "no such search or candidate"}},
            summary="A candidate's recipe, metrics and per-layer breakdown")
def get_candidate(search_id: str, k: int = _K, app=Depends(services)) -> CandidateDetail:
    return candidate_detail(app, app.jobs.get(search_id), k)


@router.get("/candidates/{k}/download", status_code=307, response_class=RedirectResponse,
            responses={307: {"description": "to the download of the trial that candidate k is now"},
                       404: {"description": "no such search or candidate"}},
            summary="The download of the front's candidate k (a redirect to its trial's download)")
def download_candidate(search_id: str, k: int = _K, format: ExportFormat | None = _FORMAT,
                       app=Depends(services)) -> RedirectResponse:
    detail = candidate_detail(app, app.jobs.get(search_id), k)
    query = f"?format={format}" if format else ""
    return RedirectResponse(download_url(search_id, detail.trial) + query, status_code=307)


@router.get("/trials/{trial}/download", response_class=FileResponse,
            responses={200: {"content": {"application/gzip": {}}, "description": "the exported model, .tar.gz"},
                       202: {"model": Preparing, "description": "a worker is building it: ask again after "
                                                                "Retry-After seconds"},
                       404: {"description": "no such search or finished trial, or no workers to build it"}},
            summary="A trial's compressed model as a .tar.gz in a runtime's format, built by a worker")
def download_trial(search_id: str, trial: int = _TRIAL, format: ExportFormat | None = _FORMAT,
                   app=Depends(services)):
    job = app.jobs.get(search_id)
    spec = SearchSpec.model_validate_json(job.spec)
    if app.studies.finished_trial(job, spec, trial) is None:
        raise NotFound(f"trial: search {job.id} has no finished candidate with trial number {trial}")
    fmt = format or runtime_format(spec.device)
    archives = app.archives
    path = archives.path(job.id, trial, fmt)
    if archives.ready(path):
        return FileResponse(path, media_type="application/gzip", filename=path.name)
    failed = archives.failure(path)
    if failed is not None:
        raise HTTPException(422, f"format: {failed}")
    if not app.settings.dispatch:
        raise DownloadsUnavailable("trial: downloads are built by workers, and this server has no task queue")
    if archives.should_ask(path):
        archives.evict(keep=path)  # make room before a new archive arrives
        try:
            app.jobs.dispatcher.export(spec.model_dump(mode="json"), trial, str(path), fmt)
        except Exception as exc:  # noqa: BLE001 - the broker is down: say so, do not 500
            archives.forget(path)
            raise HTTPException(503, f"trial: cannot reach the task queue to build the download "
                                     f"({type(exc).__name__}); try again later") from None
    body = Preparing(status="preparing", detail=f"a worker is building the download of trial {trial}; "
                                                f"ask again in {RETRY_AFTER_S} s", retry_after=RETRY_AFTER_S)
    return JSONResponse(body.model_dump(), status_code=202, headers={"Retry-After": str(RETRY_AFTER_S)})
