"""Response bodies of the API. The request body is search.spec.SearchSpec itself (the one schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from search.candidates import Candidate
from search.progress import Progress
from search.spec import SearchSpec

__all__ = ["Progress", "CandidateSummary", "CandidateDetail", "JobDetail", "JobSummary"]  # Progress: the engine's

EXAMPLE_SPEC = {"model": "demo:minilm", "device": "rpi5", "workload": "encode:128",
                "budget": {"max_latency": "200ms"}, "trials": 12}


class Links(BaseModel):
    self: str = Field(description="this search in the API")
    page: str = Field(description="this search on the web page")
    candidates: str = Field(description="template of a candidate's URL: replace {k}")
    cancel: str


class Accepted(BaseModel):
    id: str
    status: str
    links: Links

    model_config = {"json_schema_extra": {"examples": [{
        "id": "3f2a9c1b7d4e5f60", "status": "queued",
        "links": {"self": "/search/3f2a9c1b7d4e5f60", "page": "/searches/3f2a9c1b7d4e5f60",
                  "candidates": "/search/3f2a9c1b7d4e5f60/candidates/{k}",
                  "cancel": "/search/3f2a9c1b7d4e5f60"}}]}}


class CandidateSummary(Candidate):
    """A front member as the API lists it: the one Candidate (search/candidates.py), numbered in the front."""

    k: int = Field(description="index in the front, as `search-cli show` numbers candidates")
    metric: str = Field(description="the primary quality metric")
    value: float | None = Field(description="its value")


class JobSummary(BaseModel):
    id: str
    status: str
    model: str
    device: str
    workload: str
    budget: dict[str, str | None]
    trials: int
    created_at: datetime
    updated_at: datetime
    error: str | None = None
    links: Links


class JobPage(BaseModel):
    items: list[JobSummary]
    total: int
    offset: int
    limit: int
    next: str | None = Field(description="URL of the next page, null on the last")


class JobDetail(JobSummary):
    spec: SearchSpec
    progress: Progress
    metric: str | None = Field(description="the primary quality metric and its direction", default=None)
    higher_is_better: bool | None = None
    budget_ms: float | None = None
    budget_bytes: int | None = None
    front: list[CandidateSummary]


class LayerRow(BaseModel):
    name: str
    block: int | None
    role: str
    in_features: int
    out_features: int
    bits: int
    group_size: int | None
    sparsity: float
    sparsity_pattern: str
    rank: int | None = Field(description="absolute low-rank rank, null when not factorised")
    full_rank: int
    memory_bytes: int
    latency_ms: float | None


class CandidateDetail(CandidateSummary):
    search_id: str
    metrics: dict[str, Any] = Field(description="everything the search recorded for this trial")
    layers: list[LayerRow]
    dropped_blocks: list[int]
    latency_breakdown: dict[str, float] = Field(description="predicted ms by kind of op")
    memory_other_bytes: int
    download: str


class Preparing(BaseModel):
    status: str = Field(description="'preparing': a worker is building the archive")
    detail: str
    retry_after: int = Field(description="seconds to wait before asking again")


class Device(BaseModel):
    name: str
    description: str
    kind: str
    compute_unit: str
    runtime: str
    memory_gb: float
    bandwidth_gbs: float
    weight_formats: list[int]


class Health(BaseModel):
    status: str
    database: str
    broker: str | None = None
    version: str
