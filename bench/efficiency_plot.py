"""docs/search_efficiency.png: hypervolume after k full evaluations per arm, and the seed-0 fronts."""

from __future__ import annotations

import statistics
from pathlib import Path

COLOURS = {"devicefit": "tab:blue", "evopress": "tab:orange", "uniform": "tab:green", "random": "tab:gray",
           "reference": "k"}


def plot(runs: list[dict], reference: list, norm: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for arm, colour in COLOURS.items():
        mine = [r for r in runs if r["arm"] == arm]
        if not mine:
            continue
        ks = sorted({int(k) for r in mine for k in r["hv"]})
        med = [statistics.median([r["hv"][str(k)] for r in mine if str(k) in r["hv"]]) for k in ks]
        lo = [min(r["hv"][str(k)] for r in mine if str(k) in r["hv"]) for k in ks]
        hi = [max(r["hv"][str(k)] for r in mine if str(k) in r["hv"]) for k in ks]
        left.plot(ks, med, marker="o", color=colour, label=f"{arm} ({len(mine)} run{'s' * (len(mine) > 1)})")
        left.fill_between(ks, lo, hi, color=colour, alpha=0.15)
    left.axhline(0.97, ls=":", color="k", lw=0.8)
    left.set_xlabel("full evaluations")
    left.set_ylabel("hypervolume / reference")
    left.set_title("demo:minilm, rpi5, encode:128: median and range over seeds")
    left.legend(fontsize=8)

    ref = sorted(reference, key=lambda p: p[1])
    right.scatter([p[1] for p in ref], [p[0] for p in ref], s=70, facecolors="none", edgecolors="k",
                  label="reference front")
    for arm, colour in COLOURS.items():
        run = next((r for r in runs if r["arm"] == arm and arm != "reference"), None)
        if run is None:
            continue
        pts = [(1 - p["quality"]["cosine"], p["latency_ms"] / norm["budget_ms"]) for p in run["evaluated"]
               if p["feasible"]]
        right.scatter([p[1] for p in pts], [p[0] for p in pts], s=14, alpha=0.7, color=colour,
                      label=f"{arm} seed {run['seed']} (all evaluated)")
    right.set_yscale("log")
    right.set_xlabel("predicted latency / budget")
    right.set_ylabel("1 - cosine (log)")
    right.set_title("latency-quality projection (memory is the third objective)")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
