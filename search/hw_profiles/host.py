"""Micro-benchmark this machine and write a host profile (``search-cli profile --out host.yaml``).

What the host runtime does is what gets timed: PyTorch eager in bfloat16 with
devicefit's compressed modules (PackedLinear rebuilds packed weights to bf16 once
and then runs F.linear). Measured:
- F.linear in bf16 on a grid of shapes and row counts, fitted to
  time = op + weight bytes / stream rate + FLOPs / peak (three constants);
- scaled-dot-product attention (fixed cost + FLOPs / peak);
- elementwise traffic (clone of a large tensor);
- the framework cost per block and per forward of each model family, from tiny
  models of 1 and 3 blocks (norms, rotary, residuals, cache updates);
- the one-time dequantization of packed weights by bits.
Every case is repeated in interleaved rounds (all cases once per round) and the
median kept, so a burst of load on the shared machine hits every case alike.
"""

from __future__ import annotations

import datetime as dt
import platform

import numpy as np

from search.hw_profiles.measure import DEFAULT_THREADS, interleaved_medians, pinned_threads, runner
from search.hw_profiles.profile import DeviceProfile, Efficiency, MeasuredTables

LINEAR_SHAPES = ((384, 96), (96, 384), (384, 384), (384, 1536), (1536, 384), (768, 192), (768, 768),
                 (768, 2048), (2048, 768), (1024, 1024), (768, 8192))
LINEAR_ROWS = (1, 4, 16, 64, 128, 256, 512)
# tiny models of each family: their time is framework overhead, not arithmetic
# small models of each family at a realistic width: what their blocks cost beyond the matrix products and
# attention is the framework's glue (norms, rotary, activations, residuals, cache updates)
REFERENCE = {
    "llama": dict(model_type="llama", hidden_size=384, intermediate_size=1024, num_attention_heads=6,
                  num_key_value_heads=2, vocab_size=256, max_position_embeddings=1024, tie_word_embeddings=False),
    "qwen2": dict(model_type="qwen2", hidden_size=384, intermediate_size=1024, num_attention_heads=6,
                  num_key_value_heads=2, vocab_size=256, max_position_embeddings=1024, tie_word_embeddings=True),
    "gpt2": dict(model_type="gpt2", n_embd=384, n_inner=1024, n_head=6, vocab_size=256, n_positions=1024,
                 bos_token_id=0, eos_token_id=0),
    "bert": dict(model_type="bert", hidden_size=384, num_attention_heads=12, intermediate_size=1536, vocab_size=256,
                 max_position_embeddings=1024),  # MiniLM-shaped: small encoders use 32-wide heads
}
BLOCK_KEY = {"llama": "num_hidden_layers", "qwen2": "num_hidden_layers", "gpt2": "n_layer", "bert": "num_hidden_layers"}


def bench_linear(rounds: int) -> tuple[dict[int, float], dict[int, float], float]:
    """(op_us by rows, GFLOP/s by rows, median relative error) of bf16 F.linear.

    For a fixed number of rows m both the arithmetic and the weight traffic of a
    product grow with its weight count k*n, so each m is fitted on its own as
    t = op(m) + k*n * cost(m) over a range of shapes; GFLOP/s(m) = 2m / cost(m).
    """
    import torch
    import torch.nn.functional as F

    cases = {}
    for k, n in LINEAR_SHAPES:
        w = torch.randn(n, k, dtype=torch.bfloat16)
        for m in LINEAR_ROWS:
            x = torch.randn(m, k, dtype=torch.bfloat16)
            cases[(m, k, n)] = (lambda x=x, w=w: F.linear(x, w))
    with torch.inference_mode():
        med = {key: ms * 1e-3 for key, ms in interleaved_medians(cases, rounds).items()}
    op_us, gflops, errors = {}, {}, []
    floor = 0.0
    for m in LINEAR_ROWS:
        a = np.array([(1.0, float(k * n)) for k, n in LINEAR_SHAPES])
        t = np.array([med[(m, k, n)] for k, n in LINEAR_SHAPES])
        op, per_weight = _nonneg_relative_lstsq(a, t)
        per_weight = max(per_weight, floor)  # more rows never stream the weights faster
        floor = per_weight
        errors += list(np.abs((op + a[:, 1] * per_weight) / t - 1))
        op_us[m] = round(float(op) * 1e6, 2)
        gflops[m] = round(2.0 * m / per_weight / 1e9, 2)
    return op_us, gflops, float(np.median(errors))


def _nonneg_relative_lstsq(a: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Least squares on relative error with non-negative coefficients (drop a negative one and refit)."""
    active = list(range(a.shape[1]))
    while True:
        coef = np.zeros(a.shape[1])
        sol, *_ = np.linalg.lstsq(a[:, active] / t[:, None], np.ones_like(t), rcond=None)
        coef[active] = sol
        if (coef >= 0).all() or len(active) == 1:
            return np.maximum(coef, 0)
        active.remove(active[int(np.argmin(sol))])


def bench_attention(rounds: int) -> tuple[float, float]:
    """(op_us, GFLOP/s) of bf16 scaled-dot-product attention."""
    import torch
    import torch.nn.functional as F

    cases, flops = {}, {}
    for heads, hd in ((6, 64), (12, 64)):
        for rows, ctx in ((1, 128), (1, 512), (64, 64), (128, 128), (256, 256)):
            q = torch.randn(1, heads, rows, hd, dtype=torch.bfloat16)
            kv = torch.randn(1, heads, ctx, hd, dtype=torch.bfloat16)
            key = f"{heads}h{rows}x{ctx}"
            cases[key] = (lambda q=q, kv=kv: F.scaled_dot_product_attention(q, kv, kv))
            flops[key] = 4.0 * heads * rows * ctx * hd
    with torch.inference_mode():
        med = interleaved_medians(cases, rounds)
    a = np.array([(1.0, flops[k]) for k in cases])
    t = np.array([med[k] * 1e-3 for k in cases])
    coef = _nonneg_relative_lstsq(a, t)
    return coef[0] * 1e6, 1e-9 / max(coef[1], 1e-18)


def bench_cold_stream(rounds: int, total_bytes: int = 192 * 2**20) -> float:
    """bf16 weight GB/s of one-row F.linear over a ring of distinct 768x2048 weights far larger than the
    caches: each weight is read once per pass, as a forward of a model bigger than the caches reads it."""
    import torch
    import torch.nn.functional as F

    count = max(2, total_bytes // (768 * 2048 * 2))
    weights = [torch.randn(2048, 768, dtype=torch.bfloat16) for _ in range(count)]
    x = torch.randn(1, 768, dtype=torch.bfloat16)

    def ring() -> None:
        for w in weights:
            F.linear(x, w)
    with torch.inference_mode():
        med = interleaved_medians({"ring": ring}, max(3, rounds // 3), warmup=1)["ring"]
    return count * 768 * 2048 * 2 / (med * 1e-3) / 1e9


def bench_copy(rounds: int) -> float:
    import torch

    x = torch.randn(16 * 2**20, dtype=torch.bfloat16)  # 32 MiB
    y = torch.empty_like(x)
    med = interleaved_medians({"copy": lambda: y.copy_(x)}, rounds)["copy"]
    return 2 * x.numel() * 2 / (med * 1e-3) / 1e9  # read + write


def bench_framework(rounds: int, partial: DeviceProfile) -> tuple[dict, dict, dict]:
    """Framework cost of each family: (block µs, forward µs, elementwise ns per element), by 'family:kind'.

    Reference models of 1 and 3 blocks are timed; the per-block slope minus what `partial` (a profile
    with the measured matrix-product and attention costs, no glue) predicts for a block is the glue.
    Two token counts separate its fixed part from its part per element of activations.
    """
    import torch

    from search.hf_models import build_from_config
    from search.hw_profiles.latency import elementwise_elements, predict_latency
    from search.recipe import CompressionConfig
    from search.space.graph import graph_from_config

    plan = {"bert": {"encode": (16, 128)}}
    cases, graphs = {}, {}
    for family, cfg in REFERENCE.items():
        kinds = plan.get(family, {"prefill": (16, 128), "decode": (128,)})
        for blocks in (1, 3):
            conf = dict(cfg, **{BLOCK_KEY[family]: blocks})
            model = build_from_config(conf).to(torch.bfloat16)
            graphs[(family, blocks)] = graph_from_config(conf)
            for kind, token_counts in kinds.items():
                for tokens in token_counts:
                    cases[(family, kind, tokens, blocks)] = runner(model, f"{kind}:{tokens}")
    with torch.inference_mode():
        med = interleaved_medians(cases, rounds)
    block_us, forward_us, elem_ns = {}, {}, {}
    for family, kind in sorted({(f, k) for f, k, _, _ in cases}):
        token_counts = sorted({t for f, k, t, _ in cases if (f, k) == (family, kind)})
        graph = graphs[(family, 1)]
        residual, outside, elements = {}, {}, {}
        for tokens in token_counts:
            report = predict_latency(graph, CompressionConfig(), f"{kind}:{tokens}", partial)
            in_block = sum(op.time_ms for op in report.layers if op.block is not None)
            slope = (med[(family, kind, tokens, 3)] - med[(family, kind, tokens, 1)]) / 2
            residual[tokens] = (slope - in_block) * 1e3
            outside[tokens] = (med[(family, kind, tokens, 1)] - slope - (report.total_ms - in_block)) * 1e3
            elements[tokens] = elementwise_elements(graph, 1 if kind == "decode" else tokens, 1.0)
        key = f"{family}:{kind}"
        if len(token_counts) == 2:
            lo, hi = token_counts
            per_elem = max(0.0, (residual[hi] - residual[lo]) / (elements[hi] - elements[lo]))
            elem_ns[key] = round(per_elem * 1e3, 4)
        per_elem_us = elem_ns.get(key, elem_ns.get(f"{family}:prefill", 0.0)) * 1e-3
        lo = token_counts[0]
        block_us[key] = round(max(0.0, residual[lo] - per_elem_us * elements[lo]), 2)
        forward_us[key] = round(max(0.0, outside[lo]), 2)
    for key in list(block_us):  # decode glue per element follows prefill's
        family, kind = key.split(":")
        elem_ns.setdefault(key, elem_ns.get(f"{family}:prefill", 0.0))
    return block_us, forward_us, elem_ns


def bench_dequant(rounds: int) -> dict[int, float]:
    """One-time cost (ns per weight) of rebuilding a 1024x1024 packed layer to bf16, by bits."""
    import torch

    from search.compress.modules import PackedLinear
    from search.compress.packing import pack_bits
    from search.memory import plan_storage
    from search.recipe import LayerCompression

    cases = {}
    for bits in (8, 6, 5, 4, 3, 2):
        plan = plan_storage(1024, 1024, False, LayerCompression(bits=bits, group_size=128))
        codes = torch.randint(0, 2**bits, (plan.values,))
        tensors = {"qweight": pack_bits(codes, bits),
                   "scales": torch.rand(plan.rows, plan.groups).to(torch.float16),
                   "zeros": torch.randint(0, 2**bits, (plan.rows, plan.groups)).to(torch.uint8)}
        module = PackedLinear.build(plan, tensors)
        cases[bits] = (lambda m=module: m.dense_weight(torch.bfloat16))
    with torch.inference_mode():
        med = interleaved_medians(cases, rounds, warmup=1)
    return {bits: round(ms * 1e6 / (1024 * 1024), 3) for bits, ms in med.items()}


def measure_host(threads: int = DEFAULT_THREADS, rounds: int = 21, calibrate: bool = True) -> DeviceProfile:
    """A profile of this machine from micro-benchmarks (takes about a minute), its efficiency factors
    then fitted to end-to-end timings of reference models (host_reference) unless `calibrate` is off."""
    import torch

    with pinned_threads(threads):
        op_by_rows, gflops_by_rows, fit_err = bench_linear(rounds)
        attn_op, attn_gflops = bench_attention(rounds)
        copy = bench_copy(rounds)
        cold = bench_cold_stream(rounds)
        try:
            dequant = bench_dequant(max(3, rounds // 3))
        except ImportError:
            dequant = {}
        cpu = _cpu_name()
        measured = MeasuredTables(
            date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), threads=threads, torch=torch.__version__,
            clock="cpu" if threads == 1 else "wall", cpu=cpu, linear_op_us_by_rows=op_by_rows,
            linear_gflops_by_rows=gflops_by_rows, linear_fit_error=round(fit_err, 3),
            attention_op_us=round(attn_op, 2), attention_gflops=round(attn_gflops, 1), copy_gbs=round(copy, 2),
            block_us={}, forward_us={}, elementwise_ns={}, dequant_cached=True, dequant_ns_per_weight=dequant,
            cold_stream_gbs=round(cold, 2))
        partial = _host_profile(measured, threads, gflops_by_rows, copy)
        block_us, forward_us, elem_ns = bench_framework(rounds, partial)
        measured = measured.model_copy(update={"block_us": block_us, "forward_us": forward_us,
                                               "elementwise_ns": elem_ns})
        profile = _host_profile(measured, threads, gflops_by_rows, copy)
        if calibrate:
            from search.hw_profiles.host_reference import calibrate_on_references

            profile = calibrate_on_references(profile, rounds)
    return profile


def _host_profile(measured: MeasuredTables, threads: int, gflops_by_rows: dict, copy: float) -> DeviceProfile:
    import torch

    cpu = measured.cpu
    return DeviceProfile(
        name="host", version=1,
        description=f"this machine ({cpu}), PyTorch eager bf16 on {threads} pinned thread(s)",
        kind="cpu", compute_unit=f"{cpu}, {threads} thread(s)",
        runtime=f"PyTorch {torch.__version__} eager, bfloat16, devicefit PackedLinear (dequantized once, cached)",
        peak_gflops={"bf16": max(gflops_by_rows.values())}, compute_dtype="bf16", quant_compute_dtype="bf16",
        activation_bytes=2, bandwidth_gbs=round(copy, 2), memory_gb=round(_memory_gb(), 1),
        # PackedLinear runs every layer as a dense bf16 F.linear once its weight is cached: no format or
        # sparsity pattern makes a matrix product smaller on this runtime (rows of channel pruning are zeros)
        weight_formats=(16,), sparsity={}, dequant_ops_per_weight=0.0, prefill_logits="last",
        efficiency=Efficiency(compute=1.0, memory=1.0, overhead=1.0, dequant=1.0),
        sources=(f"measured by search-cli profile on {platform.node() or 'this host'} "
                 f"({measured.date}, {threads} thread(s))",),
        notes=("linear: time = op(rows) + max(bf16 weight bytes / one-row stream rate, FLOPs / gflops(rows)), "
               "fitted per row count to F.linear timings over 11 shapes",
               "block glue (norms, rotary, activations, residuals, cache updates): reference models of 1 and 3 "
               "blocks at width 384, minus their predicted matrix products and attention; a fixed part per block "
               "plus a part per activation element",
               "weights are streamed at cold_stream_gbs (a ring of distinct weights beyond the caches) when a "
               "model's linear weights exceed warm_weight_bytes: the grid times each matrix warm, from cache",
               "quantized and sparse layers cost their one-time dequantization (dequant_ns_per_weight) on the "
               "first forward only"),
        measured=measured)


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                return int(line.split()[1]) / 1e6
    except OSError:
        pass
    return 1.0
