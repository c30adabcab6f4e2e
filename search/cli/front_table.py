"""The front as a text table (search and show print the same one)."""

from __future__ import annotations

import re
from typing import Any

from search.recipe import DEFAULT_KEY, PATTERN_PREFIX, parse_recipe
from search.space.families import FAMILIES
from search.units import format_bytes, format_ms

_ROLE_OF_SUFFIX = {suffix: role for fam in FAMILIES.values() for role, suffix in fam.block_layers.items()}


def _rule_label(key: str) -> str:
    """A role rule reads as its role ('q', 'fc2'), a block rule as 'layer.3', an exact name as itself."""
    text = key.removeprefix(PATTERN_PREFIX).strip("^$").replace(r"\d+", "*").replace("\\", "").strip(".")
    if "*." in text:
        suffix = text.split("*.", 1)[1]
        return _ROLE_OF_SUFFIX.get(suffix, suffix)
    exact = re.search(r"\.(\d+)\.(.+)$", text)
    if exact and not key.startswith(PATTERN_PREFIX):  # one layer: its role and block, 'up.0'
        return f"{_ROLE_OF_SUFFIX.get(exact.group(2), exact.group(2))}.{exact.group(1)}"
    parts = [p for p in text.split(".") if p]
    return ".".join(parts[-2:]) if len(parts) > 1 and parts[-1].isdigit() else (parts[-1] if parts else key)


def _setting(s: dict[str, Any]) -> str:
    quantized = s["bits"] < 16
    out = s.get("format") or (f"{s['bits']}b" + (f"/g{s['group_size']}" if quantized and s.get("group_size") else "")
                              if quantized else "16b")
    if quantized and s.get("method") == "gptq":
        out += " gptq" + ("-ao" if s.get("act_order") else "")
    if s.get("sparsity"):
        pattern = s.get("sparsity_pattern", "unstructured")
        out += f" {s['sparsity']:.0%}" + ("" if pattern == "unstructured" else f" {pattern}")
    if s.get("rank") is not None:
        out += f" r{s['rank']:g}"
    return out


def recipe_text(recipe: dict[str, Any]) -> str:
    """Compact: the default setting, then the rules that differ, then structure ('8b; query=4b · mlp×0.5')."""
    r = parse_recipe(recipe).model_dump(mode="json")
    layers = r["layers"]
    text = _setting(layers.get(DEFAULT_KEY, {"bits": 16}))
    others = [f"{_rule_label(k)}={_setting(v)}" for k, v in layers.items() if k != DEFAULT_KEY]
    if others:
        text += "; " + " ".join(others)
    if r["width"]["mlp"] < 1:
        text += f" · mlp×{r['width']['mlp']:g}"
    if r["width"]["heads"] < 1:
        text += f" · heads×{r['width']['heads']:g}"
    if r["keep_blocks"] is not None:
        text += f" · {len(r['keep_blocks'])} blocks"
    embedding = r.get("embedding") or {}
    if embedding.get("format") or embedding.get("bits", 16) < 16:
        text += f" · emb {_setting(embedding)}"
    return text


def front_table(front: list[dict[str, Any]], metric: str | None = None) -> str:
    if not front:
        return "(empty front)"
    # every metric any candidate has, in first-seen order: a resumed study may mix candidates scored
    # before a metric existed (no top1) with newer ones; a missing or overflowed value prints as "-"
    names = list(dict.fromkeys(n for c in front for n in c["quality"]))
    if metric in names:
        names.remove(metric)
        names.insert(0, metric)
    head = ["#"] + names + ["latency", "memory", "recipe"]
    rows = [[str(k)] + [_metric_cell(c["quality"].get(n)) for n in names]
            + [format_ms(c["latency_ms"]), format_bytes(c["memory_bytes"]), recipe_text(c["recipe"])]
            for k, c in enumerate(front)]
    widths = [max(len(row[i]) for row in [head] + rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) if i == len(head) - 1 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in [head] + rows]
    return "\n".join(lines)


def _metric_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def budget_text(budget: dict[str, Any]) -> str:
    """'latency <= 40ms, memory <= 64MB' (or 'none'): one wording for every front the CLI prints."""
    parts = [f"{key.removeprefix('max_')} <= {value}" for key, value in budget.items() if value]
    return ", ".join(parts) or "none"


def front_heading(count: int, spec: dict[str, Any], metric: str, higher_is_better: bool) -> str:
    """The line above a front table, for a local search, a saved one (show) and a remote one alike."""
    return (f"Pareto front: {count} candidates for {spec.get('model')} on {spec.get('device')} "
            f"({spec.get('workload')}), budget {budget_text(spec.get('budget') or {})}; "
            f"{metric} {'higher' if higher_is_better else 'lower'} is better")
