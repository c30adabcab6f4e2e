"""Refit the shipped device profiles on data/calibration.csv and record predicted vs published, before and after.

    .venv/bin/python bench/calibration_refit.py --before REV [--write]

``--before REV``: the git revision whose profiles are "before" (their factors, today's latency model and
file-type recipes). Each profile's current file is the starting point: its efficiency factors are put
back to the data-sheet priors (compute 0.5, memory 0.6, overhead 1, dequant 1), then only the factors
its rows identify are fitted (search.hw_profiles.calibrate.identifiable_factors). With ``--write`` the
refit profiles replace the shipped ones (the 'before' version + 1). Writes docs/calibration_refit.json and prints the
markdown tables used in docs/latency.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from search.hw_profiles import load_profile  # noqa: E402
from search.hw_profiles.calibrate import (  # noqa: E402
    FACTORS,
    calibrated,
    identifiable_factors,
    read_measurements,
    sensitivities,
    with_factors,
)
from search.hw_profiles.profile import DATA_DIR, DeviceProfile  # noqa: E402

CSV = DATA_DIR / "calibration.csv"
PRIORS = {"compute": 0.5, "memory": 0.6, "overhead": 1.0, "dequant": 1.0}


def profile_at(rev: str, name: str) -> DeviceProfile:
    text = subprocess.run(["git", "show", f"{rev}:search/hw_profiles/data/{name}.yaml"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout
    return DeviceProfile.model_validate(yaml.safe_load(text))


def rate(case, ms: float) -> float:
    """The row's own unit: tokens/s for tg/pp rows."""
    tokens = case.workload.tokens if case.workload.kind == "prefill" else 1
    return tokens * 1000.0 / ms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True, help="git revision of the 'before' profiles")
    ap.add_argument("--write", action="store_true", help="write the refit profiles into search/hw_profiles/data")
    args = ap.parse_args()
    devices = sorted({ln.split(",")[0] for ln in CSV.read_text().splitlines()
                      if ln and not ln.startswith(("#", "device,"))})
    rows, profiles = [], []
    for device in devices:
        cases = read_measurements(CSV, device)
        before = profile_at(args.before, device)
        start = with_factors(load_profile(device), PRIORS)
        factors = identifiable_factors(cases)
        after = calibrated(start, cases, "data/calibration.csv", factors)
        after = after.model_copy(update={"version": before.version + 1})  # one refit of the 'before' profile
        sens = sensitivities(after, cases)
        profiles.append({"device": device, "rows": len(cases), "identified": list(factors),
                         "before": before.efficiency.model_dump(), "after": after.efficiency.model_dump(),
                         "sensitivity": {c.label.split(" ", 1)[1]: dict(zip(FACTORS, map(float, s), strict=True))
                                         for c, s in zip(cases, sens, strict=True)}})
        for case in cases:
            b = case.predict_ms(before)
            a = case.predict_ms(after)
            _, dev, model, quant, metric = case.label.split(" ")
            rows.append({"device": dev, "model": model, "quant": quant, "metric": metric,
                         "published": rate(case, case.measured_ms), "before": rate(case, b), "after": rate(case, a),
                         "before_error": b / case.measured_ms - 1, "after_error": a / case.measured_ms - 1})
        if args.write:
            (DATA_DIR / f"{device}.yaml").write_text(after.to_yaml())
    (ROOT / "docs" / "calibration_refit.json").write_text(json.dumps({"before": args.before, "rows": rows,
                                                                       "profiles": profiles}, indent=1) + "\n")
    print("| device | model | file type | metric | published | before | error | after | error |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['device']} | {r['model']} | {r['quant']} | {r['metric']} (tok/s) | {r['published']:.2f} | "
              f"{r['before']:.2f} | {r['before_error']:+.1%} | {r['after']:.2f} | {r['after_error']:+.1%} |")
    print()
    print("| device | rows | identified (fitted) | compute | memory | overhead | dequant |")
    print("|---|---|---|---|---|---|---|")
    for p in profiles:
        cells = [f"{p['before'][f]:g} → {p['after'][f]:g}" for f in FACTORS]
        print(f"| {p['device']} | {p['rows']} | {', '.join(p['identified']) or 'none'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
