"""Seed trials: recipes every search starts from, so its front matches or dominates the baselines users
compare against.

- the uncompressed model;
- the runtime's baselines (``baseline_params``): the uniform recipe in every format the device's
  runtime offers within the space's bits. llama.cpp: each GGUF type (Q8_0, Q6_K, Q5_K, Q5_0, Q5_1,
  Q4_K, Q4_0, Q4_1, Q3_K, Q2_K), embeddings included, as ``llama-quantize --pure`` writes it; MLC:
  its bits at its group sizes, symmetric (q4f16_1 is 4-bit, groups of 32); PyTorch: every bits at
  every group size of the space (a user compares against both 4-bit g32 and 4-bit g128);
- llama.cpp: each type again with the output head and the token embeddings as ``llama-quantize``
  writes them without ``--pure`` (``filetype_head_params``: the head, or an encoder's / tied model's
  embeddings, at Q6_K), the cheapest quality a user gets from a stock file type;
- GPTQ at the runtime's 5-, 4- and 3-bit formats, when the space offers GPTQ;
- the structural axes alone (each smaller depth, MLP width and head width of the space, 2:4 sparsity)
  and together (the smallest model of the space), quantized to 4 bits (GPTQ when the
  space has it): a structural cut already costs far more quality than 4-bit rounding, so pairing it
  with 8 bits buys little for nearly twice the memory (demo:minilm on rpi5: mlp x0.75 loses 0.155
  cosine at Q8_0 in 22.3 MB, 0.178 at 4-bit GPTQ in 12.4 MB).

Order (``cost`` given): the uncompressed model, then farthest-point order on predicted (latency,
memory), so the first evaluations span the cost range (extremes and knees first) and the near-
duplicates (the llama.cpp head variants) come last. Every seed is still evaluated before anything
else: the baselines must all be on the board. Without ``cost``: uncompressed, the structural seeds,
GPTQ, the baselines, the head variants.
Seeds are deduplicated by the recipe they mean (on a model whose rows do not fit K-quant blocks,
uniform Q3_K and Q2_K both fall back to Q4_0). Seeds over budget cost nothing: stage 1 rejects them
without building a model. Mixing bit widths across layers is left to the guided proposals
(search/proposer.py), which use the per-group sensitivity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from search.formats.ggml_types import GGML_TYPES
from search.space.suggest import RecipeSpace, sparsity_option

Seed = tuple[str, dict[str, Any]]
GPTQ_BITS = (5, 4, 3)  # where GPTQ's error compensation pays (at 8 and 6 bits rounding is already near-lossless)


def baseline_params(space: RecipeSpace) -> list[Seed]:
    """The uniform recipe of every format the runtime offers within the space (quantized ones only)."""
    if space.gguf:
        return [(f"uniform {name}", space.params(format=name))
                for name in space.formats if GGML_TYPES[name].quantized]
    symmetric = " symmetric" if space.caps is not None and space.caps.symmetric else ""
    return [(f"uniform {bits}-bit g{group}{symmetric}", space.params(bits=bits, group_size=group))
            for bits in space.bits if bits < 16 for group in space.group_sizes]


def filetype_head_params(space: RecipeSpace) -> list[Seed]:
    """Each llama.cpp file type's default type for the block layers, with its output head and token
    embeddings as llama.cpp's quantizer types them (search.formats.filetypes). The per-block bumps of the
    _M mixtures (more bits for some attn_v / ffn_down) need a block-granularity space and are left out."""
    if not space.gguf or "embedding.format" not in space.choices:
        return []
    from search.formats.filetypes import LLAMACPP_DEFAULT_TYPE, recipe_for_filetype

    seeds = []
    for ftype, default in LLAMACPP_DEFAULT_TYPE.items():
        if default not in space.formats or not GGML_TYPES[default].quantized:
            continue
        stock = recipe_for_filetype(space.graph, ftype)
        params = space.params(format=default, per_group={
            g.label: {"format": stock.resolve(space.graph)[g.layers[0]].format}
            for g in space.groups if g.label == "lm_head"})
        embedding = stock.embedding.format  # params() snaps the head's type to the space; this is set as is
        if embedding in space.formats:
            seeds.append((f"{default}, head/embeddings as llama.cpp {ftype}", {**params,
                                                                              "embedding.format": embedding}))
    return seeds


def gptq_params(space: RecipeSpace) -> list[Seed]:
    """Uniform GPTQ at the runtime's 5-, 4- and 3-bit formats: on GGUF runtimes the preferred type of those
    bits that fits each group; elsewhere the largest group size (the usual GPTQ baseline, g128: GPTQ's
    error compensation stands in for finer groups)."""
    if not _offers_gptq(space):
        return []
    seeds = []
    for bits in (b for b in GPTQ_BITS if b in space.bits):
        if space.gguf:  # the bits' preferred type where it fits each group (Q4_K, else Q4_0)
            seeds.append((f"uniform {bits}-bit GPTQ", space.params(bits=bits, method="gptq")))
        else:
            group = max(space.group_sizes)
            seeds.append((f"uniform {bits}-bit g{group} GPTQ",
                          space.params(bits=bits, group_size=group, method="gptq")))
    return seeds


def structural_params(space: RecipeSpace) -> list[Seed]:
    """The smallest model of the space (every width and the depth at their minimum: the fast end of the
    front), then each structural axis alone, at 4 bits (GPTQ if offered). Combinations in between are
    left to the guided proposals, which predict them from these single-axis points."""
    s = space.space
    low = [b for b in space.bits if 4 <= b < 16]
    bits = 4 if 4 in space.bits else (min(low) if low else max(space.bits))
    method = "gptq" if _offers_gptq(space) else "rtn"
    tag = f"{bits}-bit{' GPTQ' if method == 'gptq' else ''}"

    def at(**kw: Any) -> dict[str, Any]:
        return space.params(bits=bits, method=method, **kw)

    widths, depths = sorted(s.width, reverse=True), sorted(s.depth, reverse=True)
    seeds: list[Seed] = [(f"{tag} mlp/heads {widths[-1]:g} depth {depths[-1]:g}",
                          at(mlp=widths[-1], heads=widths[-1], depth=depths[-1]))]
    seeds += [(f"{tag} depth {d:g}", at(depth=d)) for d in depths if d < 1]
    seeds += [(f"{tag} mlp {w:g}", at(mlp=w)) for w in widths if w < 1]
    if "width.heads" in space.choices:
        seeds += [(f"{tag} heads {w:g}", at(heads=w)) for w in widths if w < 1]
    two_four = sparsity_option(0.5, "2:4")
    if any(n.endswith(".sparsity") and two_four in o for n, o in space.choices.items()):
        seeds.append((f"{tag} 2:4", at(sparsity=two_four)))
    return seeds


def seed_params(space: RecipeSpace, cost: Callable[[dict[str, Any]], tuple[float, float]] | None = None) -> list[Seed]:
    """Every seed, distinct; with cost(params) -> (latency, memory), ordered to span the cost range."""
    seeds: list[Seed] = [("uncompressed", space.params())]
    seeds += structural_params(space)
    seeds += gptq_params(space)  # before the baselines: of two seeds that cost the same, GPTQ goes first
    seeds += baseline_params(space)
    seeds += filetype_head_params(space)
    seeds = _distinct(space, seeds)
    return seeds if cost is None else spread_order(seeds, cost)


def spread_order(seeds: list[Seed], cost: Callable[[dict[str, Any]], tuple[float, float]]) -> list[Seed]:
    """The first seed, then farthest-point order on (latency, memory) scaled to their ranges: each next
    seed is the one farthest from every seed already placed (ties: the earlier one). The first few
    evaluations thus span fastest to slowest and smallest to largest; near-duplicates come last."""
    points = [cost(params) for _, params in seeds]
    spans = [max(p[i] for p in points) - min(p[i] for p in points) or 1.0 for i in range(2)]
    scaled = [(p[0] / spans[0], p[1] / spans[1]) for p in points]
    order, left = [0], list(range(1, len(seeds)))
    nearest = {i: math.dist(scaled[i], scaled[0]) for i in left}
    while left:
        pick = max(left, key=lambda i: (nearest[i], -i))
        left.remove(pick)
        order.append(pick)
        for i in left:
            nearest[i] = min(nearest[i], math.dist(scaled[i], scaled[pick]))
    return [seeds[i] for i in order]


def _offers_gptq(space: RecipeSpace) -> bool:
    """Whether the space lets a group choose GPTQ (a method choice exists and includes it)."""
    return "gptq" in space.space.methods and any(name.endswith(".method") for name in space.choices)


def _distinct(space: RecipeSpace, seeds: list[Seed]) -> list[Seed]:
    """The first seed of each recipe (different parameters may mean the same recipe)."""
    unique: dict[str, Seed] = {}
    for label, params in seeds:
        unique.setdefault(space.recipe(params).to_json(), (label, params))
    return list(unique.values())
