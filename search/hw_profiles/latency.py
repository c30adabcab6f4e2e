"""The latency model: predicted latency of a recipe on a device, from the graph alone (no torch).

Each matrix product is a roofline op: its time is at least its compute over the
peak the runtime reaches and at least its bytes over the bandwidth it reaches,
plus a fixed per-op overhead. On top of the linear layers come attention (with
KV-cache traffic in decode), the elementwise glue of each block (norms,
activations, residuals) and a per-forward overhead. Shapes are those left after
width pruning, depth pruning and low-rank factorisation; weight bytes come from
the exact storage formula of ``search.memory.layer_weight_bytes``, with the bits
the device's runtime really stores; a layer with a runtime ``format`` (a GGUF type)
stores exactly that type's blocks. A tied output head is the token embedding
matrix, so it is stored and read as the recipe's ``embedding`` entry says.
A prompt computes the logits of its output rows only (``prefill_logits: last``);
where the runtime also drops the other rows right after the last block's attention
(llama.cpp), that block's MLP and its glue run on the output rows alone.

Because every efficiency factor is at most 1, no op is predicted faster than
max(flops / peak, bytes / bandwidth).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from search.recipe import LayerCompression, SparsityPattern
from search.space.families import MLP_INPUT_ROLES, MLP_OUTPUT_ROLES
from search.workload import Workload

if TYPE_CHECKING:
    from search.hw_profiles.profile import DeviceProfile
    from search.recipe import CompressionConfig
    from search.space.graph import LayerInfo, ModelGraph

MLP_ROLES = frozenset(MLP_OUTPUT_ROLES + MLP_INPUT_ROLES)


@dataclass(slots=True)
class LayerLatency:
    """One op of the prediction: a linear layer, a block's attention, or a block's elementwise glue."""

    name: str
    kind: str  # "linear" | "attention" | "elementwise" | "forward"
    block: int | None
    flops: float
    bytes: float
    compute_ms: float
    memory_ms: float
    overhead_ms: float
    time_ms: float
    bound: str  # "compute" | "memory" | "overhead"


@dataclass(slots=True)
class LatencyReport:
    device: str
    workload: str
    total_ms: float
    tokens_per_s: float | None
    memory_bytes: int  # weights as stored plus the KV cache of the workload
    weight_bytes: int
    kv_cache_bytes: int
    layers: list[LayerLatency] = field(default_factory=list)

    @property
    def latency_ms(self) -> float:
        return self.total_ms

    def to_dict(self) -> dict:
        return {"device": self.device, "workload": self.workload, "latency_ms": self.total_ms,
                "tokens_per_s": self.tokens_per_s, "memory_bytes": self.memory_bytes,
                "weight_bytes": self.weight_bytes, "kv_cache_bytes": self.kv_cache_bytes,
                "layers": [asdict(layer) for layer in self.layers]}


def predict_latency(graph: ModelGraph, recipe: CompressionConfig, workload: Workload | str,
                    profile: DeviceProfile) -> LatencyReport:
    """Predicted latency of `recipe` applied to `graph`, running `workload` on `profile`."""
    if isinstance(workload, str):
        workload = Workload.parse(workload)
    settings = recipe.resolve(graph)
    blocks = graph.blocks_of(recipe.keep_blocks)
    model = _Costs(profile, graph, workload, _stored_weight_bytes(graph, recipe, settings, profile),
                   outputs_only_block(blocks, workload, profile))
    ops: list[LayerLatency] = []
    weight_bytes = 0
    for layer in recipe.kept_layers(graph):
        in_f, out_f = graph.sliced_shape(layer, recipe.width)
        op, stored = model.linear(layer, in_f, out_f, _layer_setting(layer, recipe, settings))
        ops.append(op)
        weight_bytes += 0 if layer.tied else stored  # a tied head is the embedding, counted in others
    for block in blocks:
        ops.append(model.attention(block, recipe))
        ops.append(model.elementwise(block, recipe))
    ops.append(model.forward_overhead())
    total = sum(op.time_ms for op in ops)
    kv_bytes = model.kv_cache_bytes(recipe, blocks)
    other_bytes = _other_bytes(graph, recipe, blocks, profile)
    per_token = {"encode": None, "prefill": workload.tokens * workload.batch,
                 "decode": workload.batch}[workload.kind]
    return LatencyReport(
        device=profile.name, workload=str(workload), total_ms=total,
        tokens_per_s=None if per_token is None else per_token * 1000.0 / total,
        memory_bytes=int(weight_bytes + other_bytes + kv_bytes), weight_bytes=int(weight_bytes + other_bytes),
        kv_cache_bytes=int(kv_bytes), layers=ops)


class _Costs:
    """Costs of each kind of op for one (profile, graph, workload)."""

    def __init__(self, profile: DeviceProfile, graph: ModelGraph, workload: Workload, weight_set_bytes: float = 0.0,
                 trimmed_block: int | None = None):
        self.p, self.g, self.w = profile, graph, workload
        self.trimmed_block = trimmed_block  # the block whose MLP runs on the output rows only
        measured = profile.measured
        # weights beyond the caches come from memory on every forward: the cold rate bounds the product
        self.cold = bool(measured and measured.cold_stream_gbs and weight_set_bytes > measured.warm_weight_bytes)
        self.weight_set_bytes = weight_set_bytes
        eff = profile.efficiency
        measured = profile.measured
        self.bandwidth = (measured.copy_gbs if measured else profile.bandwidth_gbs * eff.memory) * 1e9
        # rows each matrix product sees: every token in encode/prefill, one per sequence in decode
        self.rows = workload.batch * (1 if workload.kind == "decode" else workload.tokens)
        self.act = profile.activation_bytes
        self._linear_cache: dict[tuple, tuple[float, float, float, float, float, int]] = {}

    # ---- throughput ----------------------------------------------------------
    def op_s(self, rows: int) -> float:
        """Fixed cost of one matrix product of `rows` rows (launch, dispatch)."""
        measured = self.p.measured
        us = _interp_log(measured.linear_op_us_by_rows, rows) if measured else self.p.overheads.op_us
        return us * 1e-6 * self.p.efficiency.overhead

    def linear_flops_per_s(self, rows: int, quantized: bool) -> float:
        if self.p.measured is not None:
            return _interp_log(self.p.measured.linear_gflops_by_rows, rows) * 1e9 * self.p.efficiency.compute
        dtype = self.p.quant_compute_dtype if quantized else self.p.compute_dtype
        return self.p.peak(dtype) * 1e9 * self.p.efficiency.compute

    def weight_stream_bytes_per_s(self) -> float:
        if self.p.measured is not None:
            return self.p.measured.linear_stream_gbs * 1e9 * self.p.efficiency.memory
        return self.bandwidth

    def dequant_s(self, weights: float, bits: int) -> float:
        """Time to unpack quantized weights in each forward (zero for 16-bit or a cached dequantization)."""
        if bits >= 16:
            return 0.0
        measured = self.p.measured
        if measured is not None:
            if measured.dequant_cached or not measured.dequant_ns_per_weight:
                return 0.0
            ns = _at_or_above(measured.dequant_ns_per_weight, bits)
            return weights * ns * 1e-9 * self.p.efficiency.dequant
        ops = self.p.dequant_ops_per_weight * weights
        return ops / (self.p.peak(self.p.compute_dtype) * 1e9 * self.p.efficiency.compute) * self.p.efficiency.dequant

    # ---- ops ------------------------------------------------------------------
    def linear(self, layer: LayerInfo, in_f: int, out_f: int, setting: LayerCompression) -> tuple[LayerLatency, int]:
        rows = self.rows
        if layer.role == "lm_head" and self.w.kind == "prefill" and self.p.prefill_logits == "last":
            rows = self.w.batch
        elif layer.block is not None and layer.block == self.trimmed_block and layer.role in MLP_ROLES:
            rows = self.w.batch
        key = (rows, in_f, out_f, layer.bias, setting)
        costs = self._linear_cache.get(key)
        if costs is None:  # blocks repeat the same shapes and settings: cost each combination once
            costs = self._linear_cache[key] = self._linear_costs(rows, in_f, out_f, layer.bias, setting)
        flops, moved, compute, memory, overhead, stored = costs
        return _op(layer.name, "linear", layer.block, flops, moved, compute, memory, overhead), stored

    def _linear_costs(self, rows: int, in_f: int, out_f: int, bias: bool,
                      setting: LayerCompression) -> tuple[float, float, float, float, float, int]:
        from search.memory import layer_plans

        storage = self._storage_setting(setting)
        plans = layer_plans(in_f, out_f, bias, storage).values()
        stored = sum(plan.nbytes for plan in plans)
        # weights the kernels multiply: stored rows (channel pruning drops rows) of every factor
        weights = sum(plan.rows * plan.in_features for plan in plans)
        flops = 2.0 * rows * weights / self._sparse_speedup(storage)
        compute = flops / self.linear_flops_per_s(rows, storage.quantized) + self.dequant_s(weights, storage.bits)
        activations = sum(rows * (plan.in_features + plan.out_features) for plan in plans) * self.act
        gguf = self.p.measured.gguf if self.p.measured is not None else None
        if gguf is not None:  # llama.cpp: a measured cost per weight of the stored type (unpacking included)
            gtype = gguf.type_for(storage.format, storage.bits, rows, self.weight_set_bytes)
            ns = gguf.ns(gtype, rows, self.weight_set_bytes)
            outputs = sum(plan.rows for plan in plans) if rows == 1 else 0
            compute = (weights * ns + outputs * gguf.ns_per_one_row_output) * 1e-9 / self.p.efficiency.compute
            memory = activations / self.bandwidth  # the weights' own traffic is inside the measured cost
            return flops, float(stored + activations), compute, memory, len(plans) * self.op_s(rows), stored
        memory = stored / self.weight_stream_bytes_per_s() + activations / self.bandwidth
        if self.cold:  # weights read from memory, not the caches the grid was timed in
            cold = self.p.measured.cold_stream_gbs * 1e9 * self.p.efficiency.memory
            memory = max(memory, stored / cold + activations / self.bandwidth)
        return flops, float(stored + activations), compute, memory, len(plans) * self.op_s(rows), stored

    def attention(self, block: int, recipe: CompressionConfig) -> LayerLatency:
        g, w = self.g, self.w
        heads, kv = g.kept_heads(recipe.width.heads), g.kept_kv_heads(recipe.width.heads)
        hd = g.head_dim
        # (query, key) pairs scored: a sliding-window block sees at most its window
        if w.kind == "decode":
            ctx, rows = g.attention_span(block, w.tokens), 1
            pairs = float(ctx)
        else:
            ctx, rows = w.tokens, w.tokens
            # causal kernels skip the masked half
            pairs = g.causal_pairs(block, w.tokens) if w.kind == "prefill" else float(w.tokens * w.tokens)
        flops = 4.0 * w.batch * heads * pairs * hd
        if g.attn_softcap:  # Gemma 2: divide, tanh, multiply on every score
            flops += 3.0 * w.batch * heads * pairs
        moved = w.batch * (2 * rows * heads * hd + 2 * ctx * kv * hd) * self.act  # q, out; K and V (cache)
        measured = self.p.measured
        gflops = measured.attention_gflops if measured else self.p.peak(self.p.compute_dtype)
        by_kind = measured.attention_gflops_by_head_dim if measured else {}
        # an encoder's attention (every pair) has its own rates where measured, else a prompt's
        by_head_dim = by_kind.get(w.kind) or by_kind.get("decode" if w.kind == "decode" else "prefill")
        if by_head_dim:  # one query row per head vs many: different kernels, whose speed depends on the head dim
            gflops = _interp_log(by_head_dim, hd)
        rate = gflops * 1e9 * self.p.efficiency.compute
        overhead = measured.attention_op_us * 1e-6 * self.p.efficiency.overhead if measured else 0.0
        return _op(f"block{block}.attention", "attention", block, flops, moved, flops / rate,
                   moved / self.bandwidth, overhead)

    def elementwise(self, block: int, recipe: CompressionConfig) -> LayerLatency:
        g = self.g
        mlp_rows = self.w.batch if block == self.trimmed_block else None
        elements = elementwise_elements(g, self.rows, recipe.width.mlp, mlp_rows)
        moved = float(elements * self.act)
        measured = self.p.measured
        if measured is not None:
            block_us = _by_family(measured.block_us, g.family, self.w.kind)
            memory = elements * _by_family(measured.elementwise_ns, g.family, self.w.kind) * 1e-9
            memory = max(memory, moved / self.bandwidth)
        else:
            block_us, memory = self.p.overheads.block_us, moved / self.bandwidth
        overhead = block_us * 1e-6 * self.p.efficiency.overhead
        return _op(f"block{block}.elementwise", "elementwise", block, float(elements), moved, 0.0, memory, overhead)

    def forward_overhead(self) -> LayerLatency:
        g, rows = self.g, self.rows
        moved = float(rows * g.hidden_size * self.act * 2)  # embedding rows read, final norm
        if g.final_softcap:  # Gemma 2: one more pass over the logits (tanh soft-cap)
            last_only = self.w.kind == "prefill" and self.p.prefill_logits == "last"
            moved += 2.0 * (self.w.batch if last_only else rows) * g.vocab_size * self.act
        measured = self.p.measured
        forward_us = _by_family(measured.forward_us, g.family, self.w.kind) if measured else self.p.overheads.forward_us
        overhead = forward_us * 1e-6 * self.p.efficiency.overhead
        return _op("forward", "forward", None, 0.0, moved, 0.0, moved / self.bandwidth, overhead)

    def kv_cache_bytes(self, recipe: CompressionConfig, blocks: list[int]) -> float:
        if self.w.kind == "encode" or not self.g.is_causal:
            return 0.0
        kv = self.g.kept_kv_heads(recipe.width.heads)
        tokens = sum(self.g.attention_span(b, self.w.tokens) for b in blocks)  # a sliding block keeps its window
        return 2.0 * tokens * self.w.batch * kv * self.g.head_dim * self.act

    # ---- helpers --------------------------------------------------------------
    def _storage_setting(self, setting: LayerCompression) -> LayerCompression:
        return self._storage_setting_of(self.p, setting)

    @staticmethod
    def _storage_setting_of(profile: DeviceProfile, setting: LayerCompression) -> LayerCompression:
        bits = profile.storage_bits(setting.bits)
        if setting.format is not None and bits != setting.bits:
            # the runtime has no such format: it runs the next wider one of its own (host: bf16), symmetric
            setting = setting.model_copy(update={"format": None, "symmetric": True})
        sparse_kept = setting.sparsity > 0 and setting.sparsity_pattern.value in profile.sparsity
        if bits == setting.bits and (sparse_kept or setting.sparsity == 0):
            return setting
        update: dict = {"bits": bits}
        if not sparse_kept:
            update["sparsity"] = 0.0  # the runtime keeps zeros in a dense layout
        return setting.model_copy(update=update)

    def _pattern_supported(self, setting: LayerCompression) -> bool:
        return setting.sparsity_pattern.value in self.p.sparsity

    def _sparse_speedup(self, setting: LayerCompression) -> float:
        best = self.p.sparsity.get(setting.sparsity_pattern.value)
        if setting.sparsity <= 0 or best is None or setting.sparsity_pattern == SparsityPattern.CHANNEL:
            return 1.0  # channel pruning already shrank the stored rows
        if setting.sparsity_pattern == SparsityPattern.TWO_FOUR:
            return best
        return min(best, 1.0 / (1.0 - setting.sparsity))


def _stored_weight_bytes(graph: ModelGraph, recipe: CompressionConfig, settings: dict,
                         profile: DeviceProfile) -> float:
    """Bytes of linear weights one forward reads, as the runtime stores them (for the cache test)."""
    if profile.measured is None or not (profile.measured.cold_stream_gbs or profile.measured.gguf):
        return 0.0
    from search.memory import layer_plans

    total = 0.0
    for layer in recipe.kept_layers(graph):
        in_f, out_f = graph.sliced_shape(layer, recipe.width)
        storage = _Costs._storage_setting_of(profile, _layer_setting(layer, recipe, settings))
        total += sum(plan.nbytes for plan in layer_plans(in_f, out_f, layer.bias, storage).values())
    return total


def _layer_setting(layer: LayerInfo, recipe: CompressionConfig, settings: dict) -> LayerCompression:
    """A tied head multiplies by the embedding matrix: it runs in the embedding's storage."""
    return recipe.embedding if layer.tied else settings[layer.name]


def _other_bytes(graph: ModelGraph, recipe: CompressionConfig, blocks: list[int], profile: DeviceProfile) -> int:
    """Parameters outside the linear layers: the token embeddings as the runtime stores the recipe's
    embedding entry, the rest (norms, position tables) 16-bit."""
    from search.memory import embedding_bytes, token_embedding

    kept = set(blocks)
    embedding = token_embedding(graph)
    total = sum(2 * p.numel for p in graph.others if (p.block is None or p.block in kept) and p is not embedding)
    if embedding is not None:
        total += embedding_bytes(graph, _Costs._storage_setting_of(profile, recipe.embedding))
    return total


def elementwise_elements(graph: ModelGraph, rows: int, mlp_fraction: float, mlp_rows: int | None = None) -> int:
    """Activation elements one block's glue touches: norms, residuals and rotary on the hidden state
    (about ten passes), the MLP activation on its neurons (three passes gated, two otherwise) on
    `mlp_rows` rows (default: all), and two passes per further norm (Gemma's sandwich norms, q/k norms)."""
    gated = graph.fam.gated_mlp
    mlp_rows = rows if mlp_rows is None else mlp_rows
    return (rows * (10 * graph.hidden_size + 2 * graph.extra_norm_width)
            + mlp_rows * (3 if gated else 2) * graph.kept_neurons(mlp_fraction))


def outputs_only_block(blocks: list[int], workload: Workload, profile: DeviceProfile) -> int | None:
    """The block whose MLP runs on a prompt's output rows only (its last, on a runtime that drops the
    other rows after that block's attention), or None."""
    from search.hw_profiles.runtimes import runtime_caps

    if workload.kind != "prefill" or profile.prefill_logits != "last" or not blocks:
        return None
    return blocks[-1] if runtime_caps(profile).last_block_outputs_only else None


def _op(name: str, kind: str, block: int | None, flops: float, moved: float, compute_s: float,
        memory_s: float, overhead_s: float) -> LayerLatency:
    roof = max(compute_s, memory_s)
    bound = "overhead" if overhead_s > roof else ("compute" if compute_s >= memory_s else "memory")
    return LayerLatency(name=name, kind=kind, block=block, flops=flops, bytes=moved,
                        compute_ms=compute_s * 1e3, memory_ms=memory_s * 1e3, overhead_ms=overhead_s * 1e3,
                        time_ms=(roof + overhead_s) * 1e3, bound=bound)


def _interp_log(table: dict[int, float], x: float) -> float:
    """Interpolation in a measured table, linear in log(x), flat beyond its ends."""
    keys = sorted(table)
    if x <= keys[0]:
        return table[keys[0]]
    if x >= keys[-1]:
        return table[keys[-1]]
    i = bisect.bisect_right(keys, x)
    x0, x1 = keys[i - 1], keys[i]
    t = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
    return table[x0] * (1 - t) + table[x1] * t


def _by_family(table: dict[str, float], family: str, kind: str) -> float:
    """A 'family:kind' measurement; encode and prefill stand in for each other; a family not measured takes
    the largest of the same kind measured for others (safe side); else the largest of all."""
    alternates = {"encode": "prefill", "prefill": "encode", "decode": "prefill"}
    for key in (f"{family}:{kind}", f"{family}:{alternates[kind]}", family):
        if key in table:
            return table[key]
    for wanted in (kind, alternates[kind]):
        same_kind = [v for k, v in table.items() if k.endswith(f":{wanted}")]
        if same_kind:
            return max(same_kind)
    return max(table.values(), default=0.0)


def _at_or_above(table: dict[int, float], bits: int) -> float:
    """A per-bits measurement for `bits`, else the nearest measured width above it."""
    if bits in table:
        return table[bits]
    above = [b for b in table if b >= bits]
    return table[min(above)] if above else table[max(table)]
