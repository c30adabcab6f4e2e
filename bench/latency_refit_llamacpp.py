"""Refit the host-llamacpp profile on saved timings and re-check it, without timing anything again.

    .venv/bin/python bench/latency_refit_llamacpp.py [--timings docs/latency_accuracy_llamacpp_fresh.json]
        [--without PREFIX,...] [--save-profile FILE]

Reads a run of ``bench/latency_accuracy_llamacpp.py --profile fresh`` (the fitting cases' seconds and the
random recipes' timings, measured interleaved), fits a profile with the current code
(search.hw_profiles.llamacpp_profile: its features and fitting cases) and prints the accuracy table of
the recipes against that profile. This is how a change to the latency model is tried: the same
timings, so the comparison carries no machine drift. ``--without`` leaves fitting cases out by label
prefix (e.g. ``size,vocab``) to see what they add.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.latency_accuracy_llamacpp import MODELS, markdown, speedups, summarize  # noqa: E402
from search.hw_profiles.latency import predict_latency  # noqa: E402
from search.recipe import parse_recipe  # noqa: E402


def refit(saved: dict, without: tuple[str, ...] = ()):
    from search.hw_profiles import llamacpp_profile

    every_case = llamacpp_profile.fit_cases
    missing = [c.label for c in every_case() if c.label not in saved["fit_seconds"]]
    if missing:
        raise SystemExit(f"the saved run has no timing for {len(missing)} fitting cases of the current code "
                         f"(e.g. {missing[0]}): re-measure with --profile fresh")
    llamacpp_profile.fit_cases = lambda: [c for c in every_case() if not c.label.startswith(without)]
    try:
        return llamacpp_profile.profile_from_timings(saved["fit_seconds"], saved["meta"]["threads"],
                                                     saved["meta"].get("load_before", "?"))
    finally:
        llamacpp_profile.fit_cases = every_case


def repredict(rows: list[dict], profile) -> list[dict]:
    from search.space.graph import graph_from_config

    graphs = {name: graph_from_config(config) for name, config in MODELS.items()}
    out = []
    for r in rows:
        recipe = parse_recipe(json.loads(r["recipe_json"]))
        predicted = predict_latency(graphs[r["model"]], recipe, r["workload"], profile).total_ms
        out.append(dict(r, predicted_ms=predicted, error=predicted / r["measured_ms"] - 1.0))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timings", default=str(ROOT / "docs" / "latency_accuracy_llamacpp_fresh.json"))
    parser.add_argument("--without", default="", help="comma-separated label prefixes of fitting cases to leave out")
    parser.add_argument("--save-profile", help="write the refitted profile (YAML) here")
    args = parser.parse_args()
    saved = json.loads(Path(args.timings).read_text())
    if not saved.get("fit_seconds"):
        raise SystemExit(f"{args.timings} holds no fitting timings: it was not a --profile fresh run")
    without = tuple(p for p in args.without.split(",") if p)
    profile = refit(saved, without)
    rows = repredict(saved["rows"], profile)
    groups = {key: summarize([r for r in rows if (r["model"], r["workload"]) == key])
              for key in sorted({(r["model"], r["workload"]) for r in rows})}
    meta = dict(saved["meta"], profile=f"refit of {Path(args.timings).name}" + (f" without {args.without}" if without else ""))
    print(f"fit: {profile.calibration['rows']:g} cases, median |error| {profile.calibration['median_abs_error']:.1%}, "
          f"max {profile.calibration['max_abs_error']:.1%}")
    print(markdown(summarize(rows), groups, speedups(rows), meta))
    if args.save_profile:
        Path(args.save_profile).write_text(profile.to_yaml())
    return 0


if __name__ == "__main__":
    sys.exit(main())
