"""The HAQ-style ratio: how much faster than uniform 8-bit is the search's front at the same quality?

HAQ (Wang et al. 2019) reports 1.4-1.95x lower latency than uniform 8-bit at equal accuracy. Here,
on a bandwidth-bound workload (a causal LM decoding, decode:N): among the front's candidates whose
perplexity is within 1% of uniform 8-bit's (perplexity <= 1.01 x perplexity(uniform 8-bit), on the
same evaluation rows), the lowest predicted latency, as uniform 8-bit's latency / that latency.
Perplexity is used rather than KL because "1% worse" reads directly on it (a KL ratio near 0 is
not a quality ratio).

The budget is the uncompressed model's predicted latency, so every compressed recipe is allowed
and the search is free to trade quality for speed. Uniform 8-bit is the runtime's 8-bit format
(Q8_0 for llama.cpp, 8-bit RTN at the first group size otherwise); where the runtime has no 8-bit
format (MLC: 16/4/3 bits), 8-bit RTN with group size 32 is scored and predicted all the same and
flagged ``reference_runnable: false``. ``quantization_ceiling`` is uniform 8-bit's latency over the
fastest uniform recipe's, whatever its quality: the most quantization alone can give on that workload.
"""

from __future__ import annotations

from typing import Any

from bench.efficiency_arms import Bench, Setting, run_engine_arm, uniform_params

WITHIN = 1.01  # perplexity ratio that counts as "within 1%"


def eight_bit_params(bench: Bench) -> list[dict[str, Any]]:
    """Uniform recipes at 8 bits (Q8_0 in GGUF spaces) with the first (plain) method."""
    out = []
    for params in uniform_params(bench.space):
        recipe = bench.space.recipe(params)
        methods = {getattr(s, "method", None) for s in recipe.layers.values()} - {None}
        if methods - {"rtn"}:
            continue
        settings = list(recipe.layers.values())
        if all(s.format == "Q8_0" or (s.format is None and s.bits == 8) for s in settings):
            out.append(params)
    return out


def haq_ratio(device: str, evaluate: Any, *, model: str, workload: str, full_evals: int, seed: int,
              calib_samples: int, seq_len: int) -> dict[str, Any]:
    from search.recipe import CompressionConfig

    probe = Bench(Setting(model, device, workload, calib_samples, seq_len), evaluate)
    uncompressed_ms = probe.cheap(probe.space.recipe(probe.base)).latency_ms
    bench = Bench(Setting(model, device, workload, calib_samples, seq_len,
                          max_latency=f"{uncompressed_ms * 1.0001:.4f}ms"), evaluate)
    references = [bench.full(bench.space.recipe(p), "haq-8bit", i) for i, p in enumerate(eight_bit_params(bench))]
    runnable = bool(references)
    if not references:
        recipe = CompressionConfig.uniform(bits=8, group_size=32)
        references = [bench.full(recipe, "haq-8bit", 0)]
    # the strictest 8-bit reference: the best-quality one (they differ only in group size)
    reference = min(references, key=lambda p: p["quality"]["perplexity"])
    run = run_engine_arm(bench, "devicefit", seed, full_evals)
    threshold = reference["quality"]["perplexity"] * WITHIN
    from search.pareto import non_dominated

    feasible = [p for p in run["evaluated"] if p["feasible"]]
    objectives = [(bench.loss(p["quality"]), p["latency_ms"], p["memory_bytes"]) for p in feasible]
    front = [feasible[i] for i in non_dominated(objectives)]

    def fastest(points: list[dict[str, Any]]) -> dict[str, Any] | None:
        within = [p for p in points if p["quality"]["perplexity"] <= threshold]
        return min(within, key=lambda p: p["latency_ms"]) if within else None

    best, best_any = fastest(front), fastest(feasible)
    # what quantization alone could give at any quality: the fastest uniform recipe of the runtime's formats
    fastest_uniform = min(bench.cheap(bench.space.recipe(p)).latency_ms for p in uniform_params(bench.space))
    return {"device": device, "model": model, "workload": workload, "budget_ms": bench.budget_ms,
            "reference": reference, "reference_runnable": runnable, "threshold_perplexity": threshold,
            "best": best, "ratio": reference["latency_ms"] / best["latency_ms"] if best else None,
            "best_any_evaluated": best_any,
            "ratio_any_evaluated": reference["latency_ms"] / best_any["latency_ms"] if best_any else None,
            "quantization_ceiling": reference["latency_ms"] / fastest_uniform,
            "front_size": len(front), "run": {k: v for k, v in run.items() if k != "evaluated"},
            "evaluated": run["evaluated"]}
