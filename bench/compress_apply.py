"""How long search.compress.apply takes on demo:minilm (22.6M parameters), written to docs/compress_apply.md.

Recipes are applied in interleaved rounds (recipe A, B, C, ... then again) so
machine noise spreads over all of them; the table shows medians and the spread
(max - min). Torch runs with a pinned number of intra-op threads. Low-rank rows
show the first (cold) application separately: the SVD of each weight is cached
by content, so every later recipe on the same model skips it.

Run: .venv/bin/python bench/compress_apply.py [--rounds 7] [--threads 1] [--out docs/compress_apply.md]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

from provenance import git_commit

RECIPES = [  # (label, CompressionConfig.uniform arguments, calibrated)
    ("16-bit (copy + cast)", {}, False),
    ("8-bit g128", {"bits": 8}, False),
    ("4-bit g128", {"bits": 4}, False),
    ("3-bit g128", {"bits": 3}, False),
    ("4-bit + 50% 2:4 magnitude", {"bits": 4, "sparsity": 0.5, "sparsity_pattern": "2:4"}, False),
    ("50% unstructured Wanda (16 x 128 calib tokens)", {"sparsity": 0.5, "sparsity_score": "wanda"}, True),
    ("width 0.5 calibrated (16 x 128 tokens)", {"width": 0.5, "heads": 0.5}, True),
    ("rank 1/4 + 4-bit (SVD cached)", {"rank": 0.25, "bits": 4}, False),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="docs/compress_apply.md")
    args = parser.parse_args(argv)

    import torch

    from search.compress import apply
    from search.compress.transforms.lowrank import _SVD_CACHE
    from search.models import load_model
    from search.recipe import CompressionConfig

    torch.set_num_threads(args.threads)
    loaded = load_model("demo:minilm")
    calib = torch.randint(1000, 30000, (16, 128), generator=torch.Generator().manual_seed(0))
    recipes = [(label, CompressionConfig.uniform(**kw), calib if cal else None) for label, kw, cal in RECIPES]

    _SVD_CACHE.clear()
    cold_recipe = recipes[-1][1]
    start = time.perf_counter()
    apply(loaded.model, cold_recipe)
    cold_s = time.perf_counter() - start

    samples: dict[str, list[float]] = {label: [] for label, _, _ in recipes}
    apply(loaded.model, recipes[0][1])  # warm-up
    for _ in range(args.rounds):
        for label, recipe, calibration in recipes:
            start = time.perf_counter()
            apply(loaded.model, recipe, calibration)
            samples[label].append(time.perf_counter() - start)

    lines = [
        "# Time to apply a recipe to demo:minilm",
        "",
        "`search.compress.apply(model, recipe, calibration)` on all-MiniLM-L6-v2 (22.6M parameters, 36 linear",
        "layers): deep copy, transforms, packing, bfloat16 cast. Written by `bench/compress_apply.py`:",
        f"{args.rounds} interleaved rounds, median and spread (max - min), {args.threads} torch thread(s).",
        "",
        "| recipe | median s | spread s |",
        "|---|---:|---:|",
    ]
    for label, values in samples.items():
        lines.append(f"| {label} | {statistics.median(values):.3f} | {max(values) - min(values):.3f} |")
    lines += [
        f"| rank 1/4 + 4-bit, first time (36 SVDs, cold cache) | {cold_s:.3f} | (one run) |",
        "",
        "Calibrated rows include their forward passes over the calibration tokens (fp32).",
        "On a machine whose cores are shared with other work, more torch threads can be much slower",
        "(OpenMP threads spin while waiting), so the search's workers should pin one thread each.",
        "",
        f"Measured on {platform.processor() or platform.machine()}, Python {platform.python_version()},",
        f"torch {torch.__version__}, commit {git_commit()}.",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
