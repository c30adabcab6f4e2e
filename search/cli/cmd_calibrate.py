"""``search-cli calibrate``: fit a device profile's efficiency factors to your own measurements."""

from __future__ import annotations

import argparse
from pathlib import Path

from search.hw_profiles.calibrate import FACTORS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "calibrate", help="fit a device profile to measured latencies",
        description="Fit the efficiency factors of a device profile (least squares on log latency) to a CSV of "
                    "measurements with the columns of search/hw_profiles/data/calibration.csv, and write the "
                    "calibrated profile.")
    p.add_argument("--device", required=True, metavar="NAME", help="device profile name or .yaml file")
    p.add_argument("--measurements", required=True, metavar="CSV",
                   help="device,runtime,model,quant,bpw,threads,metric,value rows (metric tg, pp, tg@N, pp@N "
                        "in tokens/s, or a workload like encode:128 in ms)")
    p.add_argument("--out", required=True, metavar="FILE", help="calibrated profile to write (.yaml)")
    p.add_argument("--factors", default="auto",
                   help=f"comma-separated factors to fit, from {','.join(FACTORS)}; default 'auto': those the "
                        "measurements identify (memory from decode rows, compute from prompt/encode rows)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from search.hw_profiles import load_profile
    from search.hw_profiles.calibrate import calibrated, errors, identifiable_factors, read_measurements

    profile = load_profile(args.device)
    cases = read_measurements(args.measurements, profile.name)
    factors = tuple(f.strip() for f in args.factors.split(",") if f.strip())
    if factors == ("auto",):
        factors = identifiable_factors(cases)
    before = errors(profile, cases)
    fitted = calibrated(profile, cases, Path(args.measurements).name, factors)
    after = errors(fitted, cases)
    Path(args.out).write_text(fitted.to_yaml())
    print(f"{profile.name}: {len(cases)} measurements; factors fitted: {', '.join(factors) or 'none'}")
    for case, b, a in zip(cases, before, after, strict=True):
        print(f"  {case.label:<60} error {b:+.1%} -> {a:+.1%}")
    eff = fitted.efficiency
    print(f"efficiency compute {eff.compute:g}, memory {eff.memory:g}, overhead {eff.overhead:g}, "
          f"dequant {eff.dequant:g}")
    print(f"wrote {args.out} (version {fitted.version})")
    return 0
