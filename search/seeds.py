"""Seed trials: recipes every search starts from, so its front is never worse than a uniform recipe.

The uncompressed model, uniform quantization at each bit width of the space,
the structural axes alone (width, depth, 2:4 sparsity) and together (a ladder down to
the smallest model of the space) at 8 bits, and, when
per-layer sensitivity is known, mixed precision that spends the low bit widths
on the least sensitive groups. Seeds over budget cost nothing: stage 1
rejects them without building a model.
"""

from __future__ import annotations

from typing import Any

from search.space.suggest import RecipeSpace, sparsity_option


def seed_params(space: RecipeSpace, sensitivity: dict[str, float] | None = None) -> list[tuple[str, dict[str, Any]]]:
    s = space.space
    seeds: list[tuple[str, dict[str, Any]]] = [("uncompressed", space.params())]
    low_bits = sorted((b for b in s.bits if 3 <= b < 16), reverse=True)
    for bits in low_bits:
        seeds.append((f"uniform {bits}-bit", space.params(bits=bits)))
    eight = 8 if 8 in s.bits else (low_bits[0] if low_bits else 16)
    for depth in sorted((d for d in s.depth if d < 1), reverse=True):
        seeds.append((f"{eight}-bit depth {depth:g}", space.params(bits=eight, depth=depth)))
    for width in sorted((w for w in s.width if w < 1), reverse=True):
        seeds.append((f"{eight}-bit mlp {width:g}", space.params(bits=eight, mlp=width)))
    # the structural ladder: width, heads and depth shrunk together, step by step down to the
    # smallest model of the space, which anchors the fast, low-quality end of the front
    widths, depths = sorted(s.width, reverse=True), sorted(s.depth, reverse=True)
    for step in range(1, max(len(widths), len(depths))):
        w, d = widths[min(step, len(widths) - 1)], depths[min(step, len(depths) - 1)]
        seeds.append((f"{eight}-bit mlp/heads {w:g} depth {d:g}",
                      space.params(bits=eight, mlp=w, heads=w, depth=d)))
    if "2:4" in s.sparsity_patterns and 0.5 in s.sparsity:
        seeds.append((f"{eight}-bit 2:4", space.params(bits=eight, sparsity=sparsity_option(0.5, "2:4"))))
    if sensitivity and len(low_bits) > 1:
        ranked = sorted(sensitivity, key=sensitivity.get)  # least sensitive first
        for low in low_bits[1:]:
            for share in (0.5, 0.75):
                cheap_groups = ranked[: max(1, int(round(share * len(ranked))))]
                seeds.append((f"mixed {low}/{eight}-bit ({share:.0%} least sensitive at {low})",
                              space.params(bits=eight, per_group={g: {"bits": low} for g in cheap_groups})))
    unique: dict[str, tuple[str, dict[str, Any]]] = {}
    for label, params in seeds:
        unique.setdefault(repr(sorted(params.items())), (label, params))
    return list(unique.values())
