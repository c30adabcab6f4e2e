"""GPTQ vs round-to-nearest, uniform recipes on the demo models, written to docs/gptq_vs_rtn.json.

Every linear layer gets the same setting (the embeddings stay 16-bit); the model is built and
scored through search.evaluation (compress + score) with the default DataPolicy (8 calibration
rows and 16 evaluation rows of 128 tokens from the pydoc corpus; GPTQ's Hessians come from the
calibration rows, quality from the disjoint evaluation rows). demo:minilm is scored by cosine
to the original's embeddings (higher is better), demo:tinylm by KL to the original's next-token
distribution (lower is better) and perplexity. K-quants need input widths that are multiples
of 256: demo:minilm's 384-wide layers have none, so those rows are left out for it.

Run: .venv/bin/python bench/gptq_vs_rtn.py [--out docs/gptq_vs_rtn.json] [--models demo:tinylm ...] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provenance import git_commit  # noqa: E402

SETTINGS = [  # (label, layer setting without the method)
    ("4b/g32", {"bits": 4, "group_size": 32}),
    ("4b/g128", {"bits": 4, "group_size": 128}),
    ("Q4_0", {"format": "Q4_0"}),
    ("Q4_K", {"format": "Q4_K"}),
    ("3b/g32", {"bits": 3, "group_size": 32}),
    ("3b/g128", {"bits": 3, "group_size": 128}),
    ("Q3_K", {"format": "Q3_K"}),
]
ACT_ORDER = {"3b/g128", "Q3_K"}  # settings also run with act-order


def run(ref: str) -> list[dict]:
    from search.data_policy import DataPolicy
    from search.errors import RecipeError
    from search.evaluation import compress, score
    from search.models import load_model
    from search.recipe import parse_recipe

    loaded, policy = load_model(ref), DataPolicy()
    rows = []
    for label, setting in SETTINGS:
        variants = [("rtn", False), ("gptq", False)] + ([("gptq", True)] if label in ACT_ORDER else [])
        for method, act_order in variants:
            recipe = parse_recipe({"layers": {"_default": {**setting, "method": method, "act_order": act_order}}})
            start = time.perf_counter()
            try:
                student = compress(loaded, recipe, policy)
            except RecipeError as exc:
                print(f"{ref} {label}: {exc}")
                break
            built = time.perf_counter() - start
            quality = score(loaded, student, policy, recipe=recipe)
            row = {"model": ref, "setting": label, "method": method, "act_order": act_order,
                   "build_s": round(built, 2), **quality}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| model | setting | metric | RTN | GPTQ | GPTQ act-order |", "|---|---|---|---|---|---|"]
    for model in dict.fromkeys(r["model"] for r in rows):
        metrics = ["cosine"] if "minilm" in model else ["kl", "perplexity"]
        for label, _ in SETTINGS:
            got = {(r["method"], r["act_order"]): r for r in rows if r["model"] == model and r["setting"] == label}
            if not got:
                continue
            for metric in metrics:
                cells = [(f"{got[k][metric]:.2e}" if metric == "kl" else f"{got[k][metric]:.4f}") if k in got else ""
                         for k in (("rtn", False), ("gptq", False), ("gptq", True))]
                lines.append(f"| {model} | {label} | {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "gptq_vs_rtn.json"))
    ap.add_argument("--models", nargs="+", default=["demo:minilm", "demo:tinylm"])
    ap.add_argument("--table", action="store_true", help="only print the table of an existing --out file")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: build times comparable on a busy host)")
    args = ap.parse_args()
    if args.table:
        print(table(json.loads(Path(args.out).read_text())["rows"]))
        return
    import torch

    torch.set_num_threads(args.threads)
    rows = [row for ref in args.models for row in run(ref)]
    Path(args.out).write_text(json.dumps({"commit": git_commit(), "machine": platform.machine(),
                                          "policy": "DataPolicy() defaults",
                                          "torch_threads": args.threads, "rows": rows}, indent=1) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
