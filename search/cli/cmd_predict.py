"""``search-cli predict``: predicted latency, tokens/s and memory of a recipe on a device (no weights needed).

The recipe is a file, uniform shortcuts, or ``--format NAME``: a llama.cpp / MLC file type as that runtime
stores it (search.formats.filetypes), output head and embeddings included.

With ``--measure`` the compressed model is built and timed on this machine instead.
"""

from __future__ import annotations

import argparse
import json

from search.cli.recipe_args import add_recipe_args, recipe_from_args
from search.errors import SpecError
from search.units import format_bytes, format_ms


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict", help="predict latency and memory of a recipe on a device",
        description="Predict the latency (and tokens/s for prefill/decode), the memory and a per-layer "
                    "breakdown of a compressed model on a device profile, from its config alone.")
    p.add_argument("--device", required=True, metavar="NAME",
                   help="device profile name (see search-cli profile --list) or a profile .yaml file")
    p.add_argument("--model", default="demo:minilm", metavar="REF",
                   help="directory, config.json (no weights needed), Hub id or demo:minilm (default)")
    add_recipe_args(p)
    p.add_argument("--workload", metavar="W",
                   help="encode:N, prefill:N or decode:N, optional xB batch (default encode:128 for encoders, "
                        "decode:512 for causal LMs)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: latency_ms, tokens_per_s, memory_bytes, layers")
    p.add_argument("--measure", action="store_true",
                   help="build the compressed model and time it on this machine instead of predicting; on a "
                        "llama.cpp device (host-llamacpp) export it to GGUF, time it in llama.cpp and print both")
    p.add_argument("--repeats", type=int, default=20, help="timed runs with --measure (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs first with --measure (default 3)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads: the runtime's (llama.cpp -t) on a CPU profile, default the profile's own "
                        "(fewer threads, less compute; more add nothing); torch threads with --measure (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from search.hw_profiles import load_profile
    from search.hw_profiles.latency import predict_latency
    from search.models import load_graph
    from search.workload import Workload

    profile = load_profile(args.device)
    if args.threads is not None and args.threads < 1:
        raise SpecError(f"--threads {args.threads} must be at least 1")
    if not args.measure:
        profile = profile.with_threads(args.threads)
    graph = load_graph(args.model)
    workload = Workload.parse(args.workload or ("decode:512" if graph.is_causal else "encode:128"))
    recipe = recipe_from_args(args, graph)
    report = predict_latency(graph, recipe, workload, profile)
    if args.measure:
        return _measured(args, recipe, workload, report, profile, graph)
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    print(f"device    {profile.name} v{profile.version}: {profile.description}")
    label = recipe.summary()
    if args.format:
        from search.formats.filetypes import canonical_filetype, runtime_of

        label = f"{canonical_filetype(args.format)} ({runtime_of(args.format)} file type: {label})"
    print(f"model     {args.model} ({graph.family}, {graph.num_blocks} blocks)   recipe {label}")
    print(f"workload  {workload}")
    line = f"latency   {format_ms(report.total_ms)}"
    if report.tokens_per_s is not None:
        line += f"   ({report.tokens_per_s:.1f} tokens/s)"
    print(line)
    print(f"memory    {format_bytes(report.memory_bytes)} (weights {format_bytes(report.weight_bytes)}, "
          f"KV cache {format_bytes(report.kv_cache_bytes)})")
    print(f"\n{'op':<44} {'bound':<9} {'time':>9} {'compute':>9} {'memory':>9} {'overhead':>9}")
    for op in report.layers:
        print(f"{op.name:<44} {op.bound:<9} {op.time_ms:9.4f} {op.compute_ms:9.4f} {op.memory_ms:9.4f} "
              f"{op.overhead_ms:9.4f}")
    print("(times in ms)")
    return 0


def _measured(args: argparse.Namespace, recipe, workload, report, profile=None, graph=None) -> int:
    from search.hw_profiles.runtimes import runtime_caps

    recipe = recipe.rounded_to_nearest()  # a timing needs the formats, not GPTQ's codes (or its data)
    if profile is not None and runtime_caps(profile).name == "llama.cpp":
        from search.cli.predict_llamacpp import measured_in_llamacpp

        return measured_in_llamacpp(args, graph, recipe, workload, report, profile)
    from search.compress import apply
    from search.hw_profiles.measure import DEFAULT_THREADS, measure_latency
    from search.models import load_model

    loaded = load_model(args.model)
    model = apply(loaded.model, recipe)
    m = measure_latency(model, workload, repeats=args.repeats, warmup=args.warmup,
                        threads=args.threads or DEFAULT_THREADS)
    per_token = {"encode": None, "prefill": workload.tokens * workload.batch, "decode": workload.batch}
    tokens = per_token[workload.kind]
    tps = None if tokens is None else tokens * 1000.0 / m.median_ms
    if args.json:
        print(json.dumps({"latency_ms": m.median_ms, "tokens_per_s": tps, "memory_bytes": report.memory_bytes,
                          "layers": [], "measured": {"median_ms": m.median_ms, "spread_ms": m.spread_ms,
                                                     "samples_ms": m.samples_ms, "threads": m.threads,
                                                     "clock": m.clock},
                          "predicted_ms": report.total_ms, "device": report.device, "workload": str(workload)}))
        return 0
    print(f"measured on this machine ({m.threads} thread(s), {m.clock} clock, {len(m.samples_ms)} runs): "
          f"median {format_ms(m.median_ms)}, interquartile spread {format_ms(m.spread_ms)}"
          + (f"   ({tps:.1f} tokens/s)" if tps else ""))
    print(f"predicted for {report.device}: {format_ms(report.total_ms)}")
    return 0
