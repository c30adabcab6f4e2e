"""GET /search/{id}/candidates/{k} and its download."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from service.deps import services
from service.schemas import CandidateDetail
from service.views import candidate_detail

router = APIRouter(prefix="/search/{search_id}/candidates", tags=["candidates"])

_K = Path(ge=0, le=100_000, description="index in the front, 0 = first as GET /search/{id} lists them")


@router.get("/{k}", response_model=CandidateDetail, responses={404: {"description": "no such search or candidate"}},
            summary="A candidate's recipe, metrics and per-layer breakdown")
def get_candidate(search_id: str, k: int = _K, app=Depends(services)) -> CandidateDetail:
    return candidate_detail(app, app.jobs.get(search_id), k)


@router.get("/{k}/download", response_class=FileResponse,
            responses={200: {"content": {"application/gzip": {}}, "description": "the exported model, .tar.gz"},
                       404: {"description": "no such search or candidate"}},
            summary="The compressed model as a .tar.gz (safetensors, config, recipe)")
async def download_candidate(search_id: str, k: int = _K, app=Depends(services)) -> FileResponse:
    job = app.jobs.get(search_id)
    detail = candidate_detail(app, job, k)  # 404s before any heavy work
    path = await run_in_threadpool(app.archives.archive, job, k, detail.recipe)
    return FileResponse(path, media_type="application/gzip", filename=path.name)
