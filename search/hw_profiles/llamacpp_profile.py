"""Measure llama.cpp on this machine and fit the ``host-llamacpp`` profile (``search-cli profile --runtime llama.cpp``).

Synthetic Llama models (random values, search.hw_profiles.llamacpp_bench) are timed end to end
in llama.cpp: every GGUF type on a model that fits in the CPU caches (``WARM``) and on one far
larger (``COLD``), one-token decode and prompts of 32 and 256 rows, plus a few models of other
depths and widths, the cold model at depths 1-6 (weight sets through the caches' capacity) and a
32k vocabulary. One non-negative least-squares fit on relative error then separates:
- ns per weight of each type's matrix products (decode warm and cold, and per prompt row count),
- a fixed cost per output of one-row products (one dot-product call each),
- attention (per FLOP, at context),
- per-block glue (norms, rotary, activations, residuals, cache writes): a fixed part and a part per
  activation element, for decode and prefill,
- a fixed cost per forward (graph build, embedding rows, output).
The fitting models are disjoint from the accuracy bench's (bench/latency_accuracy_llamacpp.py:
demo:tinylm-sized and ~100M-parameter configs with random recipes), so the bench checks the
profile on models it never saw.
"""

from __future__ import annotations

import datetime as dt
import platform
from dataclasses import dataclass
from typing import Any

import numpy as np

from search.hw_profiles.gguf_costs import GgufTables
from search.hw_profiles.profile import DeviceProfile, Efficiency, MeasuredTables
from search.workload import Workload

TYPES = ("F16", "BF16", "Q8_0", "Q6_K", "Q5_K", "Q5_1", "Q5_0", "Q4_K", "Q4_1", "Q4_0", "Q3_K", "Q2_K")
_BASE = dict(model_type="llama", vocab_size=256, max_position_embeddings=1024, tie_word_embeddings=False)
# in_features of every layer a multiple of 256, so K-quants apply; WARM: 4.5M weights (9 MB at F16);
# COLD: 112M weights (29-225 MB): beyond the 32 MB L3 of this machine in every type but Q2_K
WARM = dict(_BASE, hidden_size=512, intermediate_size=1024, num_attention_heads=8, num_key_value_heads=2,
            num_hidden_layers=2)
COLD = dict(_BASE, hidden_size=1024, intermediate_size=2816, num_attention_heads=16, num_key_value_heads=4,
            num_hidden_layers=10)
# other depths, widths and head sizes: these separate the per-forward cost from the per-block glue, the glue
# per element from the matrix products, and attention at head dims 32 and 128 (llama.cpp's one-token
# attention is several times slower per FLOP at head dim 32 than at 64 on this machine)
GLUE = (dict(WARM, num_hidden_layers=1), dict(WARM, num_hidden_layers=6),
        dict(_BASE, hidden_size=768, intermediate_size=768, num_attention_heads=12, num_key_value_heads=4,
             num_hidden_layers=2),
        dict(_BASE, hidden_size=256, intermediate_size=512, num_attention_heads=4, num_key_value_heads=2,
             num_hidden_layers=4),
        dict(WARM, num_attention_heads=16, num_key_value_heads=4, num_hidden_layers=3),
        dict(WARM, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=3))
GLUE_TYPES = ("Q4_0", "F16")  # two types, so the glue is not tied to one type's coefficients
# the cold model at other depths: weight sets from 6 to 136 MB, through the caches' capacity, so the fit
# sees where decode turns from cache-bound to memory-bound rather than assuming it
SIZE_DEPTHS, SIZE_TYPES = (1, 2, 4, 6), ("Q4_0", "Q8_0", "F16")
# a 32k vocabulary: an output head of 16M weights read once per token, as in the models users ship
VOCAB = dict(WARM, vocab_size=32000)
VOCAB_TYPES = ("Q4_0", "Q6_K", "F16")
# encoders (BERT: LayerNorm, GELU, biases, every attention pair): their own glue and encode attention, at two
# depths (per block vs per forward) and head dims 64 and 32; the products reuse the types' prompt costs
_BERT = dict(model_type="bert", vocab_size=1024, max_position_embeddings=512, type_vocab_size=2,
             hidden_size=512, intermediate_size=2048, num_attention_heads=8)
ENCODERS = (dict(_BERT, num_hidden_layers=1), dict(_BERT, num_hidden_layers=4),
            dict(_BERT, hidden_size=256, intermediate_size=1024, num_hidden_layers=4),
            dict(_BERT, num_attention_heads=16, num_hidden_layers=2))
DECODE_CONTEXTS = (48, 320)  # two contexts: attention's cost at context vs the fixed glue
PREFILL_ROWS = (32, 256)
WARM_BYTES, COLD_BYTES = 10 * 2**20, 40 * 2**20


@dataclass(frozen=True)
class FitCase:
    label: str
    config: dict
    gtype: str
    workload: str


def fit_cases() -> list[FitCase]:
    cases = []
    for name, config in (("warm", WARM), ("cold", COLD)):
        for gtype in TYPES:
            cases += [FitCase(f"{name}:{gtype}:decode{ctx}", config, gtype, f"decode:{ctx}") for ctx in DECODE_CONTEXTS]
            cases += [FitCase(f"{name}:{gtype}:prefill{m}", config, gtype, f"prefill:{m}") for m in PREFILL_ROWS]
    for i, config in enumerate(GLUE):
        for gtype in GLUE_TYPES:
            for ctx in DECODE_CONTEXTS:
                cases.append(FitCase(f"glue{i}:{gtype}:decode{ctx}", config, gtype, f"decode:{ctx}"))
            cases += [FitCase(f"glue{i}:{gtype}:prefill{m}", config, gtype, f"prefill:{m}") for m in PREFILL_ROWS]
    for depth in SIZE_DEPTHS:
        cases += [FitCase(f"size{depth}:{gtype}:decode{DECODE_CONTEXTS[0]}", dict(COLD, num_hidden_layers=depth), gtype,
                          f"decode:{DECODE_CONTEXTS[0]}") for gtype in SIZE_TYPES]
    for gtype in VOCAB_TYPES:
        cases += [FitCase(f"vocab:{gtype}:decode{ctx}", VOCAB, gtype, f"decode:{ctx}") for ctx in DECODE_CONTEXTS]
        cases += [FitCase(f"vocab:{gtype}:prefill{m}", VOCAB, gtype, f"prefill:{m}") for m in PREFILL_ROWS]
    for i, config in enumerate(ENCODERS):
        cases += [FitCase(f"bert{i}:{gtype}:encode{m}", config, gtype, f"encode:{m}")
                  for gtype in GLUE_TYPES for m in PREFILL_ROWS]
    return cases


def uniform_recipe(gtype: str):
    """Every linear layer (the output head too) stored as `gtype`; token embeddings left dense."""
    from search.recipe import DEFAULT_KEY, parse_recipe

    return parse_recipe({"layers": {DEFAULT_KEY: {"format": gtype}}})


# ---- features -----------------------------------------------------------------------------
def features(graph: Any, recipe: Any, workload: Workload) -> dict[str, float]:
    """What one forward of `recipe` on `graph` does, in the units the fit prices (column -> amount)."""
    from search.hw_profiles.latency import MLP_ROLES, elementwise_elements
    from search.memory import layer_plans

    kind = workload.kind
    rows = 1 if kind == "decode" else workload.tokens
    settings = recipe.resolve(graph)
    blocks = graph.blocks_of(recipe.keep_blocks)
    # llama.cpp drops all but the output row after the last block's attention (runtimes.yaml)
    trimmed = blocks[-1] if kind == "prefill" else None
    tables = _unit_tables()
    per_type: dict[tuple[str, int], float] = {}
    stored = one_row_outputs = 0
    for layer in recipe.kept_layers(graph):
        in_f, out_f = graph.sliced_shape(layer, recipe.width)
        setting = recipe.embedding if layer.tied else settings[layer.name]
        plans = layer_plans(in_f, out_f, layer.bias, setting).values()
        stored += sum(p.nbytes for p in plans)
        gtype = tables.type_for(setting.format, setting.bits)
        # a prompt's logits: the last row only, and the last block's MLP on that row only
        last_row_only = layer.role == "lm_head" or (layer.block == trimmed and layer.role in MLP_ROLES)
        layer_rows = 1 if last_row_only else rows
        key = (gtype, layer_rows)
        per_type[key] = per_type.get(key, 0.0) + sum(p.rows * p.in_features for p in plans)
        if layer_rows == 1:  # one dot-product call per output row, whatever the row's length
            one_row_outputs += sum(p.rows for p in plans)
    elements = sum(elementwise_elements(graph, rows, recipe.width.mlp, 1 if b == trimmed else None) for b in blocks)
    glue = f"{graph.family}:{kind}"  # norms, activations and embeddings differ by family (BERT: LayerNorm, GELU)
    out = {f"forward:{glue}": 1.0, f"block:{glue}": float(len(blocks)), f"element:{glue}": float(elements),
           "row@1": float(one_row_outputs)}
    heads, hd = graph.kept_heads(recipe.width.heads), graph.head_dim
    pairs = sum(_attention_pairs(graph, b, workload) for b in blocks)
    out[f"attention:{kind}:{hd}"] = 4.0 * heads * hd * pairs
    share = tables.warm_share(stored)
    for (gtype, layer_rows), weights in per_type.items():
        out[f"{gtype}@{layer_rows}"] = out.get(f"{gtype}@{layer_rows}", 0.0) + weights * share
        if layer_rows == 1:  # weights from memory: a cost per weight of each type
            out[f"{gtype}@1:cold"] = out.get(f"{gtype}@1:cold", 0.0) + weights * (1.0 - share)
        else:  # the warm cost per weight, plus a cost per stored byte shared by the types
            out[f"{gtype}@{layer_rows}"] += weights * (1.0 - share)
            column = f"bytes@{layer_rows}:cold"
            out[column] = out.get(column, 0.0) + weights * bits_per_weight(gtype) / 8 * (1.0 - share)
    return out


def _attention_pairs(graph: Any, block: int, workload: Workload) -> float:
    """(query, key) pairs one block scores: the context in decode, causal pairs in a prompt, all in encode."""
    if workload.kind == "decode":
        return graph.attention_span(block, workload.tokens)
    if workload.kind == "encode":
        return float(workload.tokens * workload.tokens)
    return graph.causal_pairs(block, workload.tokens)


def bits_per_weight(gtype: str) -> float:
    from search.formats.ggml_types import GGML_TYPES

    return GGML_TYPES[gtype].bits_per_weight


def _unit_tables() -> GgufTables:
    """Tables with every type at cost 1: only their type lookup and warm share are used for features."""
    return GgufTables(runtime="", ns_per_weight={t: {1: 1.0} for t in TYPES}, cold_ns_per_weight={},
                      warm_bytes=WARM_BYTES, cold_bytes=COLD_BYTES)


def fit(rows: list[dict[str, float]], seconds: list[float]) -> dict[str, float]:
    """Non-negative coefficients (seconds per unit) minimising the relative error of the sum."""
    from scipy.optimize import nnls

    columns = sorted({c for r in rows for c in r})
    a = np.array([[r.get(c, 0.0) for c in columns] for r in rows])
    t = np.asarray(seconds)
    scale = a.max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(a / scale / t[:, None], np.ones_like(t))
    return {c: float(v / s) for c, v, s in zip(columns, coef, scale, strict=True)}


# ---- measuring ----------------------------------------------------------------------------
def measure_cases(cases: list[FitCase], *, threads: int, decode_rounds: int, prefill_rounds: int,
                  progress: Any = None, along: dict[str, tuple[Any, str]] | None = None,
                  contexts: dict[str, list[Any]] | None = None) -> dict[str, Any]:
    """The llama.cpp Timing of each case by label (decode and prefill each interleaved over all models).
    `along`: more (GGUF path, workload) cases by label, timed interleaved with the fitting cases (so a
    check of the profile sees the machine in the same state as the fit) and returned with them."""
    from search.hw_profiles.llamacpp_bench import time_gguf, timing_dir

    say = progress or (lambda text: None)
    out: dict[str, Any] = {}
    with timing_dir() as tmp:
        runs = {**write_case_models(cases, tmp, say), **(along or {})}
        # one-token steps, then the prompts and encoder passes (a few rounds: each takes many ms)
        for kind, rounds, prerun in (("decode", decode_rounds, True), ("prompt", prefill_rounds, False)):
            group = {label: run for label, run in runs.items() if run[1].startswith("decode") == (kind == "decode")}
            timed = time_gguf(group, rounds, threads=threads, prerun=prerun, contexts=contexts)
            out.update(timed)
            say(f"timed {len(group)} {kind} cases x {rounds} rounds")
    return out


def write_case_models(cases: list[FitCase], directory: Any, say: Any = None) -> dict[str, tuple[Any, str]]:
    """One GGUF file per (config, type) of `cases` in `directory`: label -> (path, workload)."""
    import gc

    from search.hw_profiles.llamacpp_bench import export_for_timing
    from search.models import build_from_config
    from search.space.graph import graph_from_config

    say = say or (lambda text: None)
    files: dict[tuple[str, str], Any] = {}
    configs = {_key(c.config): c.config for c in cases}
    for ckey, config in configs.items():
        model = build_from_config(config)
        for gtype in sorted({c.gtype for c in cases if _key(c.config) == ckey}):
            files[(ckey, gtype)] = export_for_timing(model, uniform_recipe(gtype), directory / f"fit{len(files)}.gguf")
        del model
        gc.collect()
        say(f"wrote {sum(1 for k in files if k[0] == ckey)} GGUF models of {graph_from_config(config).num_blocks} "
            f"blocks, hidden {config['hidden_size']}")
    return {c.label: (files[(_key(c.config), c.gtype)], c.workload) for c in cases}


def _key(config: dict) -> str:
    return repr(sorted(config.items()))


def measure_llamacpp(threads: int = 1, decode_rounds: int = 15, prefill_rounds: int = 3,
                     progress: Any = None, timings: dict[str, Any] | None = None,
                     along: dict[str, tuple[Any, str]] | None = None,
                     contexts: dict[str, list[Any]] | None = None) -> DeviceProfile:
    """The host-llamacpp profile of this machine (a few minutes); `timings`, when given, receives the
    llama.cpp Timing of every fitting case by label, and of every `along` case (see measure_cases)."""
    from search.hw_profiles.llamacpp_bench import machine_load

    load_before = machine_load()
    timed = measure_cases(fit_cases(), threads=threads, decode_rounds=decode_rounds,
                          prefill_rounds=prefill_rounds, progress=progress, along=along, contexts=contexts)
    if timings is not None:
        timings.update(timed)
    seconds = {label: t.median_ms * 1e-3 for label, t in timed.items()}
    load = f"{load_before} before, {machine_load()} after (1/5/15-minute load averages)"
    return profile_from_timings(seconds, threads, load)


def profile_from_timings(seconds: dict[str, float], threads: int, load: str) -> DeviceProfile:
    """The profile fitted on measured seconds of the fitting cases by label (others are ignored)."""
    from search.space.graph import graph_from_config

    cases = fit_cases()
    rows = [features(graph_from_config(c.config), uniform_recipe(c.gtype), Workload.parse(c.workload))
            for c in cases]
    coef = fit(rows, [seconds[c.label] for c in cases])
    profile = build_profile(coef, threads, load)
    errors = [profile_error(profile, c, seconds[c.label]) for c in cases]
    return profile.model_copy(update={"calibration": {
        "rows": float(len(cases)), "median_abs_error": round(float(np.median(np.abs(errors))), 4),
        "max_abs_error": round(float(np.max(np.abs(errors))), 4)}})


def profile_error(profile: DeviceProfile, case: FitCase, measured_s: float) -> float:
    """Relative error of the profile's prediction for one fitting case (through the real latency model)."""
    from search.hw_profiles.latency import predict_latency
    from search.space.graph import graph_from_config

    report = predict_latency(graph_from_config(case.config), uniform_recipe(case.gtype), case.workload, profile)
    return report.total_ms * 1e-3 / measured_s - 1.0


# ---- the profile ----------------------------------------------------------------------------
def build_profile(coef: dict[str, float], threads: int, load: str) -> DeviceProfile:
    """The DeviceProfile of the fitted coefficients (seconds per unit of each feature column)."""
    from search.hw_profiles.host import _cpu_name, _memory_gb
    from search.runtimes.llamacpp import llama_cpp_api  # noqa: F401  (a clear error without the extra)

    version = _llama_cpp_version()
    all_rows = (1, *PREFILL_ROWS)
    by_rows = {t: {m: round(coef.get(f"{t}@{m}", 0.0) * 1e9, 5) for m in all_rows} for t in TYPES}
    # weights streamed from memory are never cheaper than from the caches (a lower fitted value is noise)
    cold = {t: max(round(coef.get(f"{t}@1:cold", 0.0) * 1e9, 5), by_rows[t][1]) for t in TYPES}
    cold_per_byte = {m: round(coef.get(f"bytes@{m}:cold", 0.0) * 1e9, 5) for m in PREFILL_ROWS}
    gguf = GgufTables(runtime=f"llama-cpp-python {version}", ns_per_weight=by_rows, cold_ns_per_weight=cold,
                      cold_ns_per_byte=cold_per_byte, warm_bytes=WARM_BYTES, cold_bytes=COLD_BYTES,
                      ns_per_one_row_output=round(coef.get("row@1", 0.0) * 1e9, 5))
    from search.formats.ggml_types import GGML_TYPES

    f16 = by_rows["F16"]
    gflops = {m: round(2.0 * m / max(ns, 1e-9), 2) for m, ns in f16.items()}  # what F16 products reach
    rows = max(PREFILL_ROWS)
    quant_gflops = max(2.0 * rows / max(by_rows[t][rows], 1e-9) for t in TYPES if GGML_TYPES[t].quantized)
    fastest = max(max(gflops.values()), quant_gflops)
    stream = round(2.0 / max(cold["F16"], 1e-6), 2)  # F16 bytes per ns streamed from memory = GB/s
    # the fastest weight stream measured (a small type read from the caches): the profile's bandwidth
    cache_gbs = max(GGML_TYPES[t].bits_per_weight / 8 / max(by_rows[t][1], 1e-6) for t in TYPES)
    # attention is no faster per FLOP than the best matrix product: a higher fitted rate is the fit
    # trading attention against the glue of the same models, so it is capped there
    attention = {kind: {int(c.split(":")[2]): _gflops(max(v, 1e-9 / fastest)) for c, v in coef.items()
                        if c.startswith(f"attention:{kind}:")} for kind in ("decode", "prefill", "encode")}
    attention = {kind: by_hd for kind, by_hd in attention.items() if by_hd}
    cpu = _cpu_name()
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    measured = MeasuredTables(
        date=now, threads=threads, clock="cpu" if threads == 1 else "wall", cpu=cpu,
        linear_op_us_by_rows={1: 0.0}, linear_gflops_by_rows=gflops, linear_fit_error=0.0,
        attention_op_us=0.0, attention_gflops=attention["prefill"].get(64, min(attention["prefill"].values())),
        attention_gflops_by_head_dim=attention,
        copy_gbs=stream,
        block_us=_glue(coef, "block", 1e6, 3), forward_us=_glue(coef, "forward", 1e6, 3),
        elementwise_ns=_glue(coef, "element", 1e9, 5),
        dequant_cached=True, gguf=gguf, load=load)
    return DeviceProfile(
        name="host-llamacpp", version=1,
        description=f"this machine ({cpu}) running GGUF models in llama.cpp on {threads} thread(s)",
        kind="cpu", compute_unit=f"{cpu}, {threads} thread(s)",
        runtime=f"llama.cpp (CPU, {threads} threads), llama-cpp-python {version}, no repacked weight buffers",
        threads=None,  # a measured host: its tables hold for the threads they were timed with (measured.threads)
        peak_gflops={"fp32": max(gflops.values()), "int8": round(quant_gflops, 2)},
        compute_dtype="fp32", quant_compute_dtype="int8", activation_bytes=2, bandwidth_gbs=round(cache_gbs, 2), memory_gb=round(_memory_gb(), 1),
        weight_formats=(2, 3, 4, 5, 6, 8, 16), sparsity={}, prefill_logits="last",
        efficiency=Efficiency(compute=1.0, memory=1.0, overhead=1.0, dequant=1.0),
        sources=(f"measured by search-cli profile --runtime llama.cpp on {platform.node() or 'this host'} ({now}, "
                 f"{threads} thread(s), load {load})",),
        notes=("linear: time = weights x ns per weight of the layer's GGUF type at its row count (gguf table); "
               "one-row products interpolate between the warm (in-cache) and cold rate by the model's weight bytes",
               "every coefficient is one non-negative least-squares fit (relative error) over synthetic Llama "
               "models timed end to end: each GGUF type on a 2-block width-512 and a 10-block width-1024 model, "
               "decode and prompts of 32 and 256 rows, plus depths 1 and 6 and a width-768 block for the glue, "
               "the width-1024 model at depths 1-6 and a 32k vocabulary",
               "a prompt runs the last block's MLP on its output row only (llama.cpp's inp_out_ids), and a "
               "one-row product pays a fixed cost per output (gguf.ns_per_one_row_output)",
               "timed with 1 thread on the process CPU clock: on this shared 2-core machine multi-thread timings "
               "of llama.cpp's spinning thread pool vary many-fold with the load",
               "glue and per-forward costs are measured for the llama family only; other families reuse them",
               "loaded with use_extra_bufts=False (repacked AMX/AVX buffers crash Q4_0/Q8_0 decode on AMX CPUs), so the "
               "times are of llama.cpp's generic CPU kernels"),
        measured=measured)


def _glue(coef: dict[str, float], part: str, unit: float, digits: int) -> dict[str, float]:
    """The fitted glue costs of one part ('block', 'forward', 'element') by 'family:kind'."""
    return {c.split(":", 1)[1]: round(v * unit, digits) for c, v in coef.items() if c.startswith(f"{part}:")}


def _gflops(seconds_per_flop: float) -> float:
    return round(1e-9 / seconds_per_flop, 2)


def _llama_cpp_version() -> str:
    try:
        import llama_cpp

        return str(llama_cpp.__version__)
    except ImportError:
        return "unknown"
