"""Per-layer view of a candidate: settings, exact bytes and predicted time of every layer (no torch)."""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import Any

from search.recipe import CompressionConfig
from search.space.graph import ModelGraph
from search.spec import SearchSpec


@lru_cache(maxsize=16)
def graph_of(model_ref: str) -> ModelGraph:
    from search.models import load_graph

    return load_graph(model_ref)


def layer_breakdown(spec: SearchSpec, recipe: CompressionConfig) -> dict[str, Any]:
    """Rows for the heatmap and the latency breakdown of the candidate page."""
    from search.hw_profiles.latency import predict_latency
    from search.hw_profiles.profile import load_profile
    from search.memory import memory_report

    graph = graph_of(spec.model)
    resolved = recipe.resolve(graph)
    memory = memory_report(graph, recipe)
    latency = predict_latency(graph, recipe, spec.parsed_workload, load_profile(spec.device))
    time_of = {op.name: op.time_ms for op in latency.layers}
    by_kind: dict[str, float] = defaultdict(float)
    for op in latency.layers:
        by_kind[op.kind] += op.time_ms
    rows = []
    for layer in recipe.kept_layers(graph):
        setting = resolved[layer.name]
        in_f, out_f = graph.sliced_shape(layer, recipe.width)
        rows.append({
            "name": layer.name, "block": layer.block, "role": layer.role,
            "in_features": in_f, "out_features": out_f, "bits": setting.bits,
            "group_size": setting.group_size if setting.quantized else None,
            "sparsity": setting.sparsity, "sparsity_pattern": setting.sparsity_pattern.value,
            "rank": setting.rank_for(in_f, out_f), "full_rank": min(in_f, out_f),
            "memory_bytes": memory.layers.get(layer.name, 0), "latency_ms": time_of.get(layer.name),
        })
    kept = set(graph.blocks_of(recipe.keep_blocks))
    return {"layers": rows, "dropped_blocks": [b for b in range(graph.num_blocks) if b not in kept],
            "latency_breakdown": {k: round(v, 6) for k, v in sorted(by_kind.items())},
            "memory_other_bytes": memory.other_bytes}
