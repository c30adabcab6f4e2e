"""The cheap stages of a candidate's evaluation, and the rule that promotes it to the expensive one.

Stage 1 (this module, no torch): exact memory and predicted latency from the
recipe alone, and the budget violations the sampler learns from.
Stage 2 -> 3: a candidate measured on the short quality proxy is evaluated fully
only when it could still join the front: no front member is at least as fast and
as small while being better by more than the proxy's observed error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from search.recipe import CompressionConfig
from search.spec import SearchSpec

# before this many (proxy, full) pairs the proxy's error is unknown: every candidate is promoted
MIN_PAIRS_FOR_MARGIN = 3
MARGIN_FACTOR = 1.5
LOSS_FLOOR = 1e-4  # losses below this are 'lossless': relative errors there are noise


@dataclass(frozen=True)
class CheapMetrics:
    """Stage-1 result: what the recipe costs and by how much it exceeds each budget (<= 0: within)."""

    latency_ms: float
    memory_bytes: int
    constraints: tuple[float, ...]  # relative violations, (latency, memory) for the budgets set

    @property
    def feasible(self) -> bool:
        return all(c <= 0 for c in self.constraints)


class CheapEvaluator:
    """Stage 1 for one spec: memory and latency of a recipe in milliseconds of CPU, no model built."""

    def __init__(self, spec: SearchSpec, graph: Any):
        from search.hw_profiles.profile import load_profile

        self.spec, self.graph = spec, graph
        self.profile = load_profile(spec.device)
        self.workload = spec.parsed_workload

    def __call__(self, recipe: CompressionConfig) -> CheapMetrics:
        from search.hw_profiles.latency import predict_latency
        from search.memory import memory_report

        latency = predict_latency(self.graph, recipe, self.workload, self.profile).total_ms
        memory = memory_report(self.graph, recipe).total_bytes
        return CheapMetrics(latency, memory, violations(self.spec, latency, memory))


def budget_names(spec: SearchSpec) -> tuple[str, ...]:
    """Names of the constraints violations() returns, in its order."""
    names = tuple(n for n, v in (("max_latency", spec.budget.latency_ms), ("max_memory", spec.budget.memory_bytes))
                  if v is not None)
    return names or ("none",)


def violations(spec: SearchSpec, latency_ms: float, memory_bytes: float) -> tuple[float, ...]:
    """Budget violations relative to each budget, so latency and memory weigh alike (0.1 = 10% over)."""
    out = []
    if spec.budget.latency_ms is not None:
        out.append(latency_ms / spec.budget.latency_ms - 1.0)
    if spec.budget.memory_bytes is not None:
        out.append(memory_bytes / spec.budget.memory_bytes - 1.0)
    return tuple(out) or (0.0,)


class Promoter:
    """Decides whether a proxy-scored candidate deserves a full evaluation (stage 3).

    Losses are >= 0 (1 - cosine, or KL). The proxy's error grows with the loss
    (a wrecked model's cosine moves more between data slices than a near-lossless
    one's), so the margin is relative: the 90th percentile of |full - proxy| / loss
    seen so far, times MARGIN_FACTOR, times the candidate's own proxy loss.
    """

    def __init__(self, objectives: tuple[str, ...]):
        self.objectives = objectives
        self.errors: list[float] = []  # relative |full - proxy| of candidates evaluated both ways

    def observe(self, proxy_loss: float, full_loss: float) -> None:
        self.errors.append(abs(full_loss - proxy_loss) / max(proxy_loss, full_loss, LOSS_FLOOR))

    def margin(self, proxy_loss: float) -> float:
        if len(self.errors) < MIN_PAIRS_FOR_MARGIN:
            return float("inf")
        ordered = sorted(self.errors)
        high = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        return MARGIN_FACTOR * high * max(proxy_loss, LOSS_FLOOR)

    def promote(self, proxy_loss: float, latency_ms: float, memory_bytes: float,
                front: list[tuple[float, float, float]]) -> bool:
        """front: (loss, latency, memory) of the current front's fully evaluated members."""
        margin = self.margin(proxy_loss)
        for loss, lat, mem in front:
            no_slower = "latency" not in self.objectives or lat <= latency_ms
            no_bigger = "memory" not in self.objectives or mem <= memory_bytes
            if no_slower and no_bigger and loss < proxy_loss - margin:
                return False
        return True
