"""Width: structured pruning that physically slices MLP neurons and attention heads.

Per block, the kept neurons are the rows of gate/up/fc1 (Phi-3's fused
gate_up: the same neurons in its gate half and its up half) and the columns of
down/fc2; the kept heads are whole key/value groups (GQA stays intact): their
rows of q/k/v (a fused qkv - GPT-2's c_attn, Phi-3's qkv_proj -: the same groups
in its q, k and v parts) and their columns of o. Counts are exactly
graph.kept_neurons / kept_heads / kept_kv_heads.

Ranking: with calibration data, by the energy (sum of squares over calibration
tokens) of each neuron's activation / each head's attention output, measured at
the input of down/fc2 and o; without, by the squared weight norm of everything
the neuron / head owns. With zero weights a neuron/head scores 0 either way.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from search.compress.activations import input_sq_norms
from search.compress.registry import model_transform
from search.compress.transforms.depth import block_list_path
from search.recipe import CompressionConfig
from search.space.families import MLP_INPUT_ROLES, MLP_OUTPUT_ROLES
from search.space.graph import ModelGraph


def _slice(linear: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> None:
    w = linear.weight.detach()
    if rows is not None:
        w = w[rows]
        if linear.bias is not None:
            linear.bias = nn.Parameter(linear.bias.detach()[rows].clone())
    if cols is not None:
        w = w[:, cols]
    linear.weight = nn.Parameter(w.contiguous())
    linear.out_features, linear.in_features = w.shape


def _top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k highest scores, in their original order (ties: the earlier index)."""
    if k >= scores.numel():
        return torch.arange(scores.numel(), device=scores.device)
    return torch.sort(scores, descending=True, stable=True).indices[:k].sort().values


def _blocks(model: nn.Module, graph: ModelGraph) -> list[dict[str, nn.Linear]]:
    block_list = model.get_submodule(block_list_path(graph))
    return [{role: block.get_submodule(suffix) for role, suffix in graph.fam.block_layers.items()}
            for block in block_list]


def _row_energy(w: torch.Tensor) -> torch.Tensor:
    return w.detach().to(torch.float32).pow(2).sum(dim=1)


def _col_energy(w: torch.Tensor) -> torch.Tensor:
    return w.detach().to(torch.float32).pow(2).sum(dim=0)


def _head_rows(groups: torch.Tensor, heads_per_group: int, head_dim: int) -> torch.Tensor:
    """Rows (of q, or columns of o) belonging to the query heads of the kept kv groups."""
    dev = groups.device
    heads = (groups.unsqueeze(1) * heads_per_group + torch.arange(heads_per_group, device=dev)).reshape(-1)
    return (heads.unsqueeze(1) * head_dim + torch.arange(head_dim, device=dev)).reshape(-1)


def _slice_heads(layers: dict[str, nn.Linear], graph: ModelGraph, kept_kv: int,
                 o_energy: torch.Tensor | None) -> None:
    """Keep the kept_kv key/value groups whose heads carry the most energy."""
    kv, hd = graph.num_kv_heads, graph.head_dim
    if o_energy is not None:
        group_energy = o_energy.view(kv, -1).sum(dim=1)
    else:  # weight magnitude of each group's q/k/v rows and o columns
        q_width, kv_width = graph.num_heads * hd, kv * hd
        if "qkv" in layers:
            rows = _row_energy(layers["qkv"].weight)
            q, k, v = rows[:q_width], rows[q_width:q_width + kv_width], rows[q_width + kv_width:]
        else:
            q, k, v = (_row_energy(layers[r].weight) for r in ("q", "k", "v"))
        o = _col_energy(layers["o"].weight)
        group_energy = (q + o).view(kv, -1).sum(dim=1) + (k + v).view(kv, -1).sum(dim=1)
    _apply_heads(layers, graph, _top(group_energy, kept_kv))


def _apply_heads(layers: dict[str, nn.Linear], graph: ModelGraph, groups: torch.Tensor) -> None:
    hd = graph.head_dim
    per_group = graph.num_heads // graph.num_kv_heads
    q_rows = _head_rows(groups, per_group, hd)
    kv_rows = _head_rows(groups, 1, hd)
    if "qkv" in layers:  # fused: q rows, then k rows, then v rows
        q_width, kv_width = graph.num_heads * hd, graph.num_kv_heads * hd
        _slice(layers["qkv"], rows=torch.cat([q_rows, q_width + kv_rows, q_width + kv_width + kv_rows]))
    else:
        _slice(layers["q"], rows=q_rows)
        _slice(layers["k"], rows=kv_rows)
        _slice(layers["v"], rows=kv_rows)
    _slice(layers["o"], cols=q_rows)


def _neuron_row_energy(layers: dict[str, nn.Linear], role: str, neurons: int) -> torch.Tensor:
    rows = _row_energy(layers[role].weight)
    return rows[:neurons] + rows[neurons:] if role == "gate_up" else rows  # gate half + up half


def _slice_mlp(layers: dict[str, nn.Linear], kept: int, energy: torch.Tensor | None) -> None:
    outs = [r for r in MLP_OUTPUT_ROLES if r in layers]
    down = next(r for r in MLP_INPUT_ROLES if r in layers)
    neurons_total = layers[down].in_features
    if energy is None:
        energy = _col_energy(layers[down].weight) + sum(_neuron_row_energy(layers, r, neurons_total) for r in outs)
    neurons = _top(energy, kept)
    for r in outs:
        rows = torch.cat([neurons, neurons_total + neurons]) if r == "gate_up" else neurons
        _slice(layers[r], rows=rows)
    _slice(layers[down], cols=neurons)


def _update_attributes(model: nn.Module, graph: ModelGraph, kept_heads: int, kept_kv: int, neurons: int,
                       heads_changed: bool, mlp_changed: bool) -> None:
    """Let the sliced modules reshape correctly (transformers 5 attention/MLP classes)."""
    config = model.config
    for block in model.get_submodule(block_list_path(graph)):
        for module in block.modules():
            if heads_changed and hasattr(module, "split_size"):  # GPT2Attention splits c_attn by this width
                module.num_heads = kept_heads
                module.split_size = kept_heads * graph.head_dim
            if heads_changed and hasattr(module, "all_head_size"):  # BertSelfAttention
                module.num_attention_heads = kept_heads
                module.all_head_size = kept_heads * graph.head_dim
            if heads_changed and hasattr(module, "num_key_value_heads"):  # Phi3Attention splits qkv by this
                module.num_key_value_heads = kept_kv
            if mlp_changed and hasattr(module, "intermediate_size"):  # LlamaMLP / Qwen2MLP / GemmaMLP
                module.intermediate_size = neurons
    if mlp_changed:
        config.intermediate_size = neurons
        if graph.family == "gpt2":
            config.n_inner = neurons
    if heads_changed and hasattr(config, "num_key_value_heads"):
        # Llama-like configs: head_dim made explicit, so the head counts can follow the slicing
        # (Phi-3 also reads config.num_attention_heads to split its fused qkv)
        config.head_dim = graph.head_dim
        config.num_attention_heads = kept_heads
        config.num_key_value_heads = kept_kv


@model_transform("width")
def slice_width(model: nn.Module, graph: ModelGraph, recipe: CompressionConfig,
                calibration: torch.Tensor | None = None, structure_only: bool = False,
                energy_cache: Callable[[Callable[[], dict]], dict] | None = None, **_) -> None:
    """energy_cache(measure): the activation energies, from a cache of earlier measurements (apply's
    VariantCache: they depend on the kept blocks and the calibration rows, not on the widths)."""
    width = recipe.width
    heads_changed = graph.kept_kv_heads(width.heads) < graph.num_kv_heads
    mlp_changed = graph.kept_neurons(width.mlp) < graph.intermediate_size
    if not heads_changed and not mlp_changed:
        return
    blocks = _blocks(model, graph)
    energy: dict[str, torch.Tensor] = {}
    if calibration is not None and not structure_only:
        probes = {}
        for i, layers in enumerate(blocks):
            down = next(r for r in MLP_INPUT_ROLES if r in layers)
            if heads_changed:
                probes[f"{i}.o"] = layers["o"]
            if mlp_changed:
                probes[f"{i}.mlp"] = layers[down]
        energy = (input_sq_norms(model, probes, calibration) if energy_cache is None
                  else energy_cache(lambda: input_sq_norms(model, probes, calibration)))
    kept_kv, neurons = graph.kept_kv_heads(width.heads), graph.kept_neurons(width.mlp)
    for i, layers in enumerate(blocks):
        if heads_changed:
            if structure_only:
                _apply_heads(layers, graph, torch.arange(kept_kv))
            else:
                _slice_heads(layers, graph, kept_kv, energy.get(f"{i}.o"))
        if mlp_changed:
            if structure_only:
                _slice_mlp(layers, neurons, torch.arange(graph.intermediate_size, 0, -1, dtype=torch.float32))
            else:
                _slice_mlp(layers, neurons, energy.get(f"{i}.mlp"))
    _update_attributes(model, graph, graph.kept_heads(width.heads), kept_kv, neurons, heads_changed, mlp_changed)
