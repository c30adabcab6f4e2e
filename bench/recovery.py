"""Recovery benchmark: quality before vs after distillation / QAT on demo:tinylm and demo:minilm.

Rows: width-0.5 (half the MLP neurons and attention heads) and depth-0.5 (half the blocks)
students before vs after N distillation steps; 2- and 3-bit weights, round-to-nearest (RTN)
vs quantization-aware training (QAT) for the same N steps. Training uses the calib part of
the offline corpus, metrics the disjoint eval part (16 x 128 tokens).

    .venv/bin/python bench/recovery.py            # writes the table into docs/recovery.md
    .venv/bin/python bench/recovery.py --steps 50 --models tinylm --no-write
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOC = ROOT / "docs" / "recovery.md"
RAW = ROOT / "docs" / "recovery_bench.json"
BEGIN, END = "<!-- bench/recovery.py:begin -->", "<!-- bench/recovery.py:end -->"


def students(graph) -> dict[str, object]:
    from search.recipe import CompressionConfig, evenly_spaced_blocks

    return {
        "width-0.5": ("distill", CompressionConfig.uniform(width=0.5, heads=0.5)),
        "depth-0.5": ("distill", CompressionConfig.uniform(keep_blocks=evenly_spaced_blocks(graph.num_blocks, 0.5))),
        "2-bit g64": ("qat", CompressionConfig.uniform(bits=2, group_size=64)),
        "3-bit g64": ("qat", CompressionConfig.uniform(bits=3, group_size=64)),
    }


def run_model(ref: str, steps: int, seed: int, batch_size: int, train_seq_len: int) -> list[dict]:
    import torch

    from search.compress import apply
    from search.data_policy import DataPolicy
    from search.evaluation import calibration_rows, quality_evaluator
    from search.models import load_model
    from search.recovery.recover import RecoverySettings, recover, training_batches

    teacher = load_model(ref)
    policy = DataPolicy(calib_rows=16, eval_rows=16, seq_len=128)
    evaluator = quality_evaluator(teacher, policy)
    calib = calibration_rows(teacher, policy)  # for width-pruning importance
    train = training_batches(teacher, train_seq_len)
    settings = replace(RecoverySettings.default_for(teacher.graph.is_causal), batch_size=batch_size)
    rows = []
    for name, (kind, recipe) in students(teacher.graph).items():
        torch.manual_seed(seed)
        compressed = apply(teacher.model, recipe, calib)
        started = time.perf_counter()
        _, before, after = recover(teacher, compressed, recipe, train, f"{steps}steps", evaluator=evaluator,
                                   settings=settings, keep_best=False, seed=seed)
        rows.append({"model": ref, "student": name, "method": kind, "steps": steps, "before": before,
                     "after": after, "seconds": round(time.perf_counter() - started, 1),
                     "train_rows": int(train.shape[0]), "train_seq_len": train_seq_len, "batch_size": batch_size,
                     "lr": settings.lr})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _fmt(metrics: dict[str, float]) -> str:
    if "cosine" in metrics:
        return f"cos {metrics['cosine']:.4f}"
    return f"KL {metrics['kl']:.4f} · ppl {metrics['perplexity']:.2f}"


def improved(row: dict) -> bool:
    b, a = row["before"], row["after"]
    if "cosine" in b:
        return a["cosine"] > b["cosine"]
    return a["kl"] < b["kl"] and a["perplexity"] < b["perplexity"]


def table(rows: list[dict], threads: int) -> str:
    lines = [f"Measured by `bench/recovery.py` ({time.strftime('%Y-%m-%d')}, CPU, {threads} thread(s) on a "
             "shared 2-core machine, seed 0). Metrics on the eval part of the offline corpus (16 x 128 tokens); "
             "training on 128 rows of the disjoint calib part (batch x tokens per step as listed). "
             "Times are wall-clock on a heavily shared machine.", "",
             "| model | student | before | after | method, steps (batch x tokens, lr) | improved | time |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        before = ("RTN: " if r["method"] == "qat" else "") + _fmt(r["before"])
        after = ("QAT: " if r["method"] == "qat" else "") + _fmt(r["after"])
        method = "distillation" if r["method"] == "distill" else "QAT (STE, weights + scales)"
        shape = f"{r.get('batch_size', 8)} x {r.get('train_seq_len', 128)}, lr {r.get('lr', 0):g}"
        lines.append(f"| {r['model']} | {r['student']} | {before} | {after} | {method}, {r['steps']} ({shape}) | "
                     f"{'yes' if improved(r) else '**no**'} | {r['seconds']}s |")
    return "\n".join(lines)


def write_doc(text: str) -> None:
    doc = DOC.read_text() if DOC.exists() else f"# Recovery\n\n{BEGIN}\n{END}\n"
    if BEGIN not in doc:
        doc += f"\n{BEGIN}\n{END}\n"
    doc = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: f"{BEGIN}\n{text}\n{END}", doc, flags=re.S)
    DOC.write_text(doc)


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--models", default="tinylm,minilm", help="comma-separated demo names")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=8, help="training rows per step")
    parser.add_argument("--train-seq-len", type=int, default=128, help="tokens per training row")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.models.split(","):
        rows += run_model(f"demo:{name.strip()}", args.steps, args.seed, args.batch_size, args.train_seq_len)
    print(table(rows, args.threads))
    if not args.no_write:
        # rows of models not run this time are kept, so the models can be measured one at a time
        kept = [r for r in (json.loads(RAW.read_text()) if RAW.exists() else []) if r["model"] not in
                {row["model"] for row in rows}]
        merged = sorted(kept + rows, key=lambda r: (r["model"] != "demo:tinylm", r["model"]))
        for r in rows:
            r["threads"] = args.threads
        RAW.write_text(json.dumps(merged, indent=1))
        write_doc(table(merged, args.threads))
    return 0 if all(improved(r) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
