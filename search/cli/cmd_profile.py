"""``search-cli profile``: micro-benchmark this machine and write a device profile (or list the known ones)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "profile", help="measure this machine and write a device profile (host.yaml)",
        description="Run micro-benchmarks on this machine (bf16 matrix products at the shapes the host runtime "
                    "uses, attention, memory traffic, per-block framework cost, dequantization) and write a "
                    "device profile in the same format as the shipped ones; then time a few reference models of "
                    "its own end to end and fit the efficiency factors to them (--no-calibrate skips this). "
                    "--list prints the known devices.")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="profile to write (default host.yaml; host-llamacpp.yaml with --runtime llama.cpp)")
    p.add_argument("--runtime", choices=["pytorch", "llama.cpp"], default="pytorch",
                   help="the runtime to measure: devicefit's PyTorch modules (default) or GGUF models in llama.cpp "
                        "(needs llama-cpp-python; about 3-5 minutes)")
    p.add_argument("--threads", type=int, default=1, help="torch / llama.cpp threads (default 1)")
    p.add_argument("--rounds", type=int, default=21, help="interleaved timing rounds per benchmark (default 21)")
    p.add_argument("--no-calibrate", action="store_true",
                   help="keep the micro-benchmark factors (skip the end-to-end reference-model calibration)")
    p.add_argument("--list", action="store_true", help="list the known device profiles and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from search.errors import SpecError
    from search.hw_profiles import list_profiles, load_profile

    if args.list:
        for name in list_profiles():
            prof = load_profile(name)
            print(f"{name:<26} v{prof.version}  {prof.runtime}  ({prof.bandwidth_gbs:g} GB/s)")
        return 0
    if args.threads < 1 or args.rounds < 3:
        raise SpecError("--threads must be at least 1 and --rounds at least 3")
    if args.runtime == "llama.cpp":
        return _llamacpp(args)
    from search.hw_profiles.host import measure_host

    profile = measure_host(threads=args.threads, rounds=args.rounds, calibrate=not args.no_calibrate)
    args.out = args.out or "host.yaml"
    Path(args.out).write_text(profile.to_yaml())
    m = profile.measured
    print(f"wrote {args.out}: {profile.compute_unit}")
    print(f"  linear: us/op by rows {m.linear_op_us_by_rows}; bf16 GFLOP/s by rows {m.linear_gflops_by_rows} "
          f"(fit error {m.linear_fit_error:.0%}); one-row weight stream {m.linear_stream_gbs:.1f} GB/s")
    print(f"  attention {m.attention_gflops:.0f} GFLOP/s, copy {m.copy_gbs:.1f} GB/s, "
          f"cold weight stream {m.cold_stream_gbs or 0:.1f} GB/s")
    if profile.calibration:
        eff, cal = profile.efficiency, profile.calibration
        print(f"  end-to-end calibration on {cal['rows']} reference timings: compute {eff.compute:g}, memory "
              f"{eff.memory:g}, overhead {eff.overhead:g} (median |error| {cal['median_abs_error']:.1%})")
    return 0


def _llamacpp(args: argparse.Namespace) -> int:
    from search.hw_profiles.llamacpp_profile import measure_llamacpp
    from search.runtimes.llamacpp import llama_cpp_api

    llama_cpp_api()  # a one-line error when llama-cpp-python is missing
    out = args.out or "host-llamacpp.yaml"
    profile = measure_llamacpp(threads=args.threads, decode_rounds=args.rounds,
                               prefill_rounds=max(3, args.rounds // 4), progress=lambda text: print(f"  {text}"))
    Path(out).write_text(profile.to_yaml())
    m, cal = profile.measured, profile.calibration
    print(f"wrote {out}: {profile.runtime} on {profile.compute_unit} (load {m.load})")
    decode = {t: v[1] for t, v in m.gguf.ns_per_weight.items()}
    print(f"  one-row ns per weight in cache {decode}; from memory {m.gguf.cold_ns_per_weight}; "
          f"prompt rows from memory: +ns per byte {m.gguf.cold_ns_per_byte}")
    print(f"  fit on {cal['rows']:g} synthetic-model timings: median |error| {cal['median_abs_error']:.1%}, "
          f"max {cal['max_abs_error']:.1%}")
    return 0
