"""Predicted (host-llamacpp profile) vs measured (llama.cpp on this machine) latency of random GGUF recipes.

    .venv/bin/python bench/latency_accuracy_llamacpp.py [--recipes 30] [--profile fresh|host-llamacpp|FILE]
        [--decode-rounds 11] [--prefill-rounds 5] [--models tinylm,llama100m]

``--profile fresh`` profiles this machine (search.hw_profiles.llamacpp_profile) with the recipes' timings
interleaved round by round into the fitting cases' timings, so profile and check see the same machine
state; the fit itself uses only its own synthetic models. The fitting timings are saved with the
results, for bench/latency_refit_llamacpp.py.

Models: a demo:tinylm-sized Llama (its config, random weights) and a ~100M-parameter random-init Llama
(the config of bench/latency_accuracy.py) - both disjoint from the synthetic models the profile was
fitted on (search.hw_profiles.llamacpp_profile). Recipes: random runtime-valid mixtures: a llama.cpp
file type's own per-tensor mixture, or random GGUF types for the attention and MLP layers and the token
embeddings, each with random MLP width and depth; recipes llama.cpp cannot run are redrawn. Each is
exported to GGUF (search.hw_profiles.llamacpp_bench: valid blocks, values irrelevant to speed) and timed
in llama.cpp, 1 thread on the process CPU clock, decode:128 and prefill:256, all recipes of a model
interleaved round by round. Reports the fraction within +-10% / +-20%, the median |error|, Spearman's
rank correlation, and the decode speed-up of the Q4_0 and Q8_0 file types over F16 (predicted vs
measured). Writes docs/latency_accuracy_llamacpp.json and prints the markdown table.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from search.errors import RecipeError  # noqa: E402
from search.formats.filetypes import LLAMACPP_DEFAULT_TYPE, recipe_for_filetype  # noqa: E402
from search.hw_profiles import load_profile  # noqa: E402
from search.hw_profiles.latency import predict_latency  # noqa: E402
from search.hw_profiles.llamacpp_bench import (  # noqa: E402
    export_for_timing,
    machine_load,
    time_gguf,
    timing_dir,
)
from search.hw_profiles.runtimes import runtime_caps, unrunnable  # noqa: E402
from search.recipe import evenly_spaced_blocks, parse_recipe  # noqa: E402

MODELS = {
    "tinylm": dict(model_type="llama", vocab_size=256, hidden_size=256, intermediate_size=768, num_hidden_layers=6,
                   num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=512,
                   tie_word_embeddings=False),
    "llama100m": dict(model_type="llama", hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                      num_attention_heads=12, num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048,
                      tie_word_embeddings=True),
    # demo:minilm's shape (all-MiniLM-L6-v2): llama.cpp runs BERT as an embedding model
    "minilm": dict(model_type="bert", vocab_size=30522, hidden_size=384, intermediate_size=1536, num_hidden_layers=6,
                   num_attention_heads=12, max_position_embeddings=512, type_vocab_size=2),
}
CAUSAL_WORKLOADS, ENCODER_WORKLOADS = ("decode:128", "prefill:256"), ("encode:128",)
# the layers a random recipe may type apart from the rest, by family
PATTERNS = {"llama": ("re:mlp", "re:self_attn"), "bert": (r"re:(intermediate|\d\.output)\.dense", "re:attention")}
SPEEDUP_TYPES = ("F16", "Q8_0", "Q4_0")
OUT = ROOT / "docs" / "latency_accuracy_llamacpp.json"


def workloads(name: str) -> tuple[str, ...]:
    return ENCODER_WORKLOADS if MODELS[name]["model_type"] == "bert" else CAUSAL_WORKLOADS


def random_recipe(rng: random.Random, graph, types: tuple[str, ...]):
    """A file type's mixture or random per-role GGUF types, with random MLP width and depth."""
    if rng.random() < 0.4:
        data = recipe_for_filetype(graph, rng.choice(list(LLAMACPP_DEFAULT_TYPE))).model_dump(mode="json")
    else:
        mlp, attention = PATTERNS[graph.family]
        layers = {"_default": {"format": rng.choice(types)}}
        if rng.random() < 0.7:
            layers[mlp] = {"format": rng.choice(types)}
        if rng.random() < 0.5:
            layers[attention] = {"format": rng.choice(types)}
        data = {"layers": layers, "embedding": {"format": rng.choice(types)} if rng.random() < 0.7 else {}}
    depth = rng.choice([1.0, 1.0, 0.75, 0.5])
    data["width"] = {"mlp": rng.choice([1.0, 1.0, 0.75, 0.5]), "heads": 1.0}
    data["keep_blocks"] = None if depth == 1.0 else list(evenly_spaced_blocks(graph.num_blocks, depth))
    return parse_recipe(data)


def export_recipes(name: str, config: dict, profile, n_recipes: int, seed: int, directory: Path) -> list[dict]:
    """The F16/Q8_0/Q4_0 file types and `n_recipes` random runnable recipes of one model, each written as
    a GGUF file in `directory`: [{model, recipe (label), recipe_obj, path}]."""
    from search.models import build_from_config
    from search.space.graph import graph_from_config

    graph = graph_from_config(config)
    model = build_from_config(config, seed=seed)
    caps = runtime_caps(profile)
    rng = random.Random(seed)
    labelled = [(f"filetype:{t}", recipe_for_filetype(graph, t)) for t in SPEEDUP_TYPES]
    out = []
    for label, recipe in labelled:
        out.append({"model": name, "recipe": label, "recipe_obj": recipe,
                    "path": export_for_timing(model, recipe, directory / f"{name}{len(out)}.gguf")})
    while len(out) < n_recipes + len(SPEEDUP_TYPES):
        recipe = random_recipe(rng, graph, caps.weight_formats)
        if unrunnable(graph, recipe, caps):
            continue
        label = f"random{len(out) - len(SPEEDUP_TYPES)}"
        try:
            path = export_for_timing(model, recipe, directory / f"{name}{len(out)}.gguf")
        except RecipeError:
            continue  # a type whose block does not divide a pruned row: not runnable, draw again
        out.append({"model": name, "recipe": label, "recipe_obj": recipe, "path": path})
    del model
    gc.collect()
    print(f"{name}: exported {len(out)} GGUF models (load {machine_load()})", flush=True)
    return out


def timing_cases(exported: list[dict]) -> dict[str, tuple[Path, str]]:
    """Every exported recipe x workload as a time_gguf case, labelled model|recipe|workload."""
    return {f"{e['model']}|{e['recipe']}|{w}": (e["path"], w) for e in exported for w in workloads(e["model"])}


def time_cases(cases: dict[str, tuple[Path, str]], threads: int, decode_rounds: int, prefill_rounds: int,
               contexts: dict) -> dict:
    """Decode cases, then prefill cases, each interleaved round by round over every model."""
    timed = {}
    for kind, rounds, prerun in (("decode", decode_rounds, True), ("prompt", prefill_rounds, False)):
        started = time.time()
        group = {k: v for k, v in cases.items() if v[1].startswith("decode") == (kind == "decode")}
        timed.update(time_gguf(group, rounds, threads=threads, prerun=prerun, contexts=contexts))
        print(f"{kind}: {len(group)} models x {rounds} rounds in {time.time() - started:.0f} s "
              f"(load {machine_load()})", flush=True)
    return timed


def result_rows(exported: list[dict], timed: dict, profile) -> list[dict]:
    from search.space.graph import graph_from_config

    rows = []
    for workload in CAUSAL_WORKLOADS + ENCODER_WORKLOADS:
        for e in (e for e in exported if workload in workloads(e["model"])):
            graph = graph_from_config(MODELS[e["model"]])
            predicted = predict_latency(graph, e["recipe_obj"], workload, profile).total_ms
            t = timed[f"{e['model']}|{e['recipe']}|{workload}"]
            rows.append({"model": e["model"], "workload": workload, "recipe": e["recipe"], "predicted_ms": predicted,
                         "measured_ms": t.median_ms, "spread_ms": t.spread_ms,
                         "error": predicted / t.median_ms - 1.0, "recipe_json": e["recipe_obj"].to_json()})
    return rows


def summarize(rows: list[dict]) -> dict:
    from scipy.stats import spearmanr

    errors = [abs(r["error"]) for r in rows]
    rho = spearmanr([r["predicted_ms"] for r in rows], [r["measured_ms"] for r in rows]).statistic if len(rows) > 2 else None
    return {"n": len(rows), "within_10": sum(e <= 0.10 for e in errors) / len(errors),
            "within_20": sum(e <= 0.20 for e in errors) / len(errors), "median_abs_error": statistics.median(errors),
            "median_error": statistics.median(r["error"] for r in rows), "spearman": rho,
            "median_spread": statistics.median(r["spread_ms"] / r["measured_ms"] for r in rows)}


def speedups(rows: list[dict]) -> list[dict]:
    out = []
    for model in sorted({r["model"] for r in rows if r["workload"] == "decode:128"}):
        by = {r["recipe"]: r for r in rows if r["model"] == model and r["workload"] == "decode:128"}
        base = by["filetype:F16"]
        for t in SPEEDUP_TYPES[1:]:
            r = by[f"filetype:{t}"]
            out.append({"model": model, "type": t, "predicted": base["predicted_ms"] / r["predicted_ms"],
                        "measured": base["measured_ms"] / r["measured_ms"]})
    return out


def markdown(summary: dict, groups: dict, ups: list[dict], meta: dict) -> str:
    lines = [f"Measured {meta['date']} on {meta['cpu']}, llama.cpp (llama-cpp-python {meta['llama_cpp']}), "
             f"{meta['threads']} thread, process CPU clock; load average {meta['load_before']} before, "
             f"{meta['load_after']} after; profile `{meta['profile']}` ({meta['profile_date']}). "
             f"{meta['recipes']} random recipes + the F16/Q8_0/Q4_0 file types per model; decode "
             f"{meta['decode_rounds']} rounds, prefill {meta['prefill_rounds']} rounds, medians.", "",
             "| model | workload | n | within ±10% | within ±20% | median abs error | median error | Spearman |"
             " median IQR / median |", "|---|---|---|---|---|---|---|---|---|"]
    for (model, workload), s in list(groups.items()) + [(("all", "all"), summary)]:
        lines.append(f"| {model} | {workload} | {s['n']} | {s['within_10']:.0%} | {s['within_20']:.0%} | "
                     f"{s['median_abs_error']:.1%} | {s['median_error']:+.1%} | {s['spearman']:.3f} | "
                     f"{s['median_spread']:.1%} |")
    lines += ["", "| model | decode:128 speed-up over F16 | predicted | measured |", "|---|---|---|---|"]
    for u in ups:
        lines.append(f"| {u['model']} | {u['type']} | {u['predicted']:.2f}x | {u['measured']:.2f}x |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", type=int, default=30)
    parser.add_argument("--profile", default="host-llamacpp",
                        help="a profile name or file, or 'fresh': measure one, interleaved with the recipes' timings")
    parser.add_argument("--decode-rounds", type=int, default=11)
    parser.add_argument("--prefill-rounds", type=int, default=5)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    import datetime as dt

    import llama_cpp

    from search.hw_profiles.host import _cpu_name

    fit_timings: dict = {}
    contexts: dict = {}  # every loaded context's samples per case, for offline study
    load_before = machine_load()
    with timing_dir() as tmp:
        # the recipes are drawn with the shipped profile's runtime capabilities (the same for a fresh one)
        caps_profile = load_profile("host-llamacpp" if args.profile == "fresh" else args.profile)
        exported = []
        for i, name in enumerate(args.models.split(",")):
            exported += export_recipes(name, MODELS[name], caps_profile, args.recipes, args.seed + i, tmp)
        cases = timing_cases(exported)
        if args.profile == "fresh":
            # profile the machine with the recipes' timings interleaved into the fit's: both see the same
            # machine state (a shared host's speed drifts by several % within minutes); the fit uses only
            # its own synthetic models
            from search.hw_profiles.llamacpp_profile import measure_llamacpp

            started = time.time()
            profile = measure_llamacpp(decode_rounds=args.decode_rounds, prefill_rounds=args.prefill_rounds,
                                       timings=fit_timings, along=cases, progress=print, contexts=contexts)
            timed = {k: fit_timings.pop(k) for k in cases}
            print(f"fresh profile and recipes timed in {time.time() - started:.0f} s (fit median |error| "
                  f"{profile.calibration['median_abs_error']:.1%})", flush=True)
        else:
            profile = load_profile(args.profile)
            timed = time_cases(cases, profile.threads or 1, args.decode_rounds, args.prefill_rounds, contexts)
    threads = profile.threads or 1
    rows = result_rows(exported, timed, profile)
    groups = {}
    for key in sorted({(r["model"], r["workload"]) for r in rows}):
        groups[key] = summarize([r for r in rows if (r["model"], r["workload"]) == key])
    summary = summarize(rows)
    ups = speedups(rows)
    meta = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": _cpu_name(),
            "llama_cpp": llama_cpp.__version__, "threads": threads, "load_before": load_before,
            "load_after": machine_load(), "profile": args.profile,
            "profile_date": profile.measured.date if profile.measured else "?", "recipes": args.recipes,
            "decode_rounds": args.decode_rounds, "prefill_rounds": args.prefill_rounds}
    Path(args.out).write_text(json.dumps({"meta": meta, "summary": summary,
                                          "groups": {f"{m} {w}": s for (m, w), s in groups.items()},
                                          "speedups": ups, "rows": rows,
                                          # a fresh profile's fitting timings: refit offline with
                                          # bench/latency_refit_llamacpp.py
                                          "fit_seconds": {k: t.median_ms * 1e-3 for k, t in fit_timings.items()},
                                          "samples_ms": {k: [t.samples_ms for t in v] for k, v in contexts.items()}},
                                         indent=1))
    print(markdown(summary, groups, ups, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
