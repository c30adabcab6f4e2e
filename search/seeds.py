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
- the structural axes alone (depth, width, 2:4 sparsity) and together (a ladder down to the smallest
  model of the space) at 8 bits;
- when per-layer sensitivity is known, mixed precision that spends the two lowest bit widths (>= 3)
  on the least sensitive groups.

Order: the uncompressed model, the runtime's baselines, the structural ladder (so a short search
still sees a spread of speeds), GPTQ, the llama.cpp head variants, then the rest.
Seeds are deduplicated by the recipe they mean (on a model whose rows do not fit K-quant blocks,
uniform Q3_K and Q2_K both fall back to Q4_0). Seeds over budget cost nothing: stage 1 rejects them
without building a model.
"""

from __future__ import annotations

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
    if "gptq" not in space.space.methods or not any(name.endswith(".method") for name in space.choices):
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


def seed_params(space: RecipeSpace, sensitivity: dict[str, float] | None = None) -> list[Seed]:
    s = space.space
    seeds: list[Seed] = [("uncompressed", space.params())]
    seeds += baseline_params(space)
    low_bits = sorted((b for b in space.bits if 3 <= b < 16), reverse=True)
    eight = 8 if 8 in space.bits else (low_bits[0] if low_bits else 16)
    # the structural ladder early (a short search still gets a spread of speeds): width, heads and depth
    # shrunk together, step by step down to the smallest model of the space, which anchors the fast,
    # low-quality end of the front
    widths, depths = sorted(s.width, reverse=True), sorted(s.depth, reverse=True)
    for step in range(1, max(len(widths), len(depths))):
        w, d = widths[min(step, len(widths) - 1)], depths[min(step, len(depths) - 1)]
        seeds.append((f"{eight}-bit mlp/heads {w:g} depth {d:g}",
                      space.params(bits=eight, mlp=w, heads=w, depth=d)))
    seeds += gptq_params(space)
    seeds += filetype_head_params(space)
    for depth in sorted((d for d in s.depth if d < 1), reverse=True):
        seeds.append((f"{eight}-bit depth {depth:g}", space.params(bits=eight, depth=depth)))
    for width in sorted((w for w in s.width if w < 1), reverse=True):
        seeds.append((f"{eight}-bit mlp {width:g}", space.params(bits=eight, mlp=width)))
    if "2:4" in s.sparsity_patterns and 0.5 in s.sparsity:
        seeds.append((f"{eight}-bit 2:4", space.params(bits=eight, sparsity=sparsity_option(0.5, "2:4"))))
    if sensitivity and len(low_bits) > 1:
        ranked = sorted(sensitivity, key=sensitivity.get)  # least sensitive first
        for low in low_bits[-2:]:  # the two lowest: mixing in 6 or 5 bits saves little over uniform 8
            if low == eight:
                continue
            for share in (0.5, 0.75):
                cheap_groups = ranked[: max(1, int(round(share * len(ranked))))]
                seeds.append((f"mixed {low}/{eight}-bit ({share:.0%} least sensitive at {low})",
                              space.params(bits=eight, per_group={g: {"bits": low} for g in cheap_groups})))
    return _distinct(space, seeds)


def _distinct(space: RecipeSpace, seeds: list[Seed]) -> list[Seed]:
    """The first seed of each recipe (different parameters may mean the same recipe)."""
    unique: dict[str, Seed] = {}
    for label, params in seeds:
        unique.setdefault(space.recipe(params).to_json(), (label, params))
    return list(unique.values())
