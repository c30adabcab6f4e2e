"""``search-cli predict --measure`` on a llama.cpp device: export to GGUF, time in llama.cpp, print both numbers.

The candidate is the model (random weights when only a config is given) compressed by the recipe,
written as GGUF with its real quantized weights and timed by llama.cpp on this machine (1 thread on the
process CPU clock by default, search.hw_profiles.llamacpp_bench); the prediction is the device profile's.
"""

from __future__ import annotations

import argparse
import json

from search.errors import RecipeError, SpecError
from search.units import format_ms


def measured_in_llamacpp(args: argparse.Namespace, graph, recipe, workload, report, profile) -> int:
    from search.hw_profiles.llamacpp_bench import clock_for, measure_gguf
    from search.hw_profiles.runtimes import runtime_caps, unrunnable
    from search.models import load_model
    from search.runtimes.llamacpp import llama_cpp_api

    if workload.batch != 1:
        raise SpecError(f"--measure in llama.cpp times encode:N, prefill:N or decode:N with batch 1, not {workload}")
    if (workload.kind == "encode") == graph.is_causal:
        raise SpecError(f"--measure in llama.cpp times encode:N on encoders and prefill:N or decode:N on causal "
                        f"models, not {workload} on this {'causal model' if graph.is_causal else 'encoder'}")
    problems = unrunnable(graph, recipe, runtime_caps(profile))
    if problems:
        raise RecipeError(f"llama.cpp cannot run this recipe: {problems[0]}"
                          + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    if args.repeats < 1 or args.warmup < 0:
        raise SpecError("--repeats must be at least 1 and --warmup at least 0")
    llama_cpp_api()  # a one-line error when llama-cpp-python is missing
    threads = args.threads or (profile.measured.threads if profile.measured else profile.threads) or 1
    loaded = load_model(args.model)
    timing = measure_gguf(loaded.model, recipe, workload, threads=threads, rounds=args.repeats,
                          warmup=max(1, args.warmup))
    tokens = 1 if workload.kind == "decode" else workload.tokens
    measured_tps = tokens * 1000.0 / timing.median_ms
    predicted_tps = tokens * 1000.0 / report.total_ms
    clock = clock_for(threads)
    if args.json:
        print(json.dumps({
            "device": report.device, "workload": str(workload), "runtime": "llama.cpp",
            "predicted_ms": report.total_ms, "measured_ms": timing.median_ms,
            "predicted_tokens_per_s": predicted_tps, "measured_tokens_per_s": measured_tps,
            "error": report.total_ms / timing.median_ms - 1.0,
            "latency_ms": timing.median_ms, "tokens_per_s": measured_tps, "memory_bytes": report.memory_bytes,
            "measured": {"median_ms": timing.median_ms, "spread_ms": timing.spread_ms,
                         "samples_ms": timing.samples_ms, "threads": threads, "clock": clock}}))
        return 0
    print(f"measured in llama.cpp ({threads} thread(s), {clock} clock, {len(timing.samples_ms)} runs): median "
          f"{format_ms(timing.median_ms)}, interquartile spread {format_ms(timing.spread_ms)}   "
          f"({measured_tps:.1f} tokens/s)")
    print(f"predicted for {report.device}: {format_ms(report.total_ms)}   ({predicted_tps:.1f} tokens/s, "
          f"{report.total_ms / timing.median_ms - 1.0:+.1%})")
    return 0
