"""Response bodies of the API. The request body is search.spec.SearchSpec itself (the one schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

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


# ---- the "try it" box (service/routes/generate.py) ------------------------------------------------------
MAX_PROMPT_CHARS = 2000
MAX_NEW_TOKENS = 256


class GenerateRequest(BaseModel):
    """A prompt for a causal-LM candidate to continue, greedily."""

    model_config = {"extra": "forbid",
                    "json_schema_extra": {"examples": [{"prompt": "The quick brown fox", "max_new_tokens": 32}]}}

    prompt: str = Field(description=f"the text to continue (1 to {MAX_PROMPT_CHARS} characters)")
    max_new_tokens: int = Field(32, ge=1, le=MAX_NEW_TOKENS, description="tokens to generate at most")

    @field_validator("prompt")
    @classmethod
    def _usable_prompt(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the prompt is empty; type some text for the candidate to continue")
        if len(v) > MAX_PROMPT_CHARS:
            raise ValueError(f"{len(v)} characters is more than this server allows ({MAX_PROMPT_CHARS})")
        if "\x00" in v or any(0xD800 <= ord(ch) <= 0xDFFF for ch in v):
            raise ValueError("contains a NUL byte or a lone UTF-16 surrogate, which cannot be tokenized")
        return v


class GenerationLinks(BaseModel):
    self: str = Field(description="poll this for the result")
    download: str = Field(description="the download of the candidate that generates")


class Generation(BaseModel):
    """One generation: pending until a worker answered, then done (with the text) or failed (with why)."""

    id: str
    status: str = Field(description="pending, done or failed")
    trial: int = Field(description="the trial whose candidate generates")
    text: str | None = Field(None, description="the continuation only (done)")
    error: str | None = Field(None, description="why it failed (failed)")
    prompt_tokens: int | None = None
    new_tokens: int | None = None
    tokens_per_second: float | None = Field(None, description="decode speed on the worker")
    build_seconds: float | None = Field(None, description="building the candidate (0 when the worker had it)")
    cached: bool | None = Field(None, description="whether the worker had this candidate built already")
    retry_after: int | None = Field(None, description="pending: seconds to wait before asking again")
    links: GenerationLinks | None = None
