"""``search-cli demo``: list the bundled demo models and build the trained ones (demo:tinylm, demo:smalllm)."""

from __future__ import annotations

import argparse
import json

from search.errors import ModelError


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="list demo models; build demo:tinylm or demo:smalllm",
                              description="Demo models: demo:minilm ships with a package; demo:tinylm (4.9M "
                                          "parameters, a few minutes on 2 cores) and demo:smalllm (34.4M, 6-12 "
                                          "minutes) are trained on the offline corpus on first use (seeded) and "
                                          "cached under $DEVICEFIT_CACHE (~/.cache/devicefit).")
    sub = p.add_subparsers(dest="demo_action", metavar="ACTION")
    sub.add_parser("list", help="the demo models and whether each is ready")
    build = sub.add_parser("build", help="train and cache a demo model (tinylm, smalllm)")
    build.add_argument("name", help="demo name: tinylm or smalllm")
    build.add_argument("--rebuild", action="store_true", help="train again even when a cached copy exists")
    build.add_argument("--steps", type=int, help="training steps (default: the demo's, 400 for tinylm; other values cache separately)")
    build.add_argument("--seed", type=int, help="training seed (default 0; other values cache separately)")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from search import demos
    from search.demos import BUILT_DEMOS, DEMO_MODELS

    if args.demo_action in (None, "list"):
        for name in sorted(DEMO_MODELS):
            state = "ready"
            if name in BUILT_DEMOS:
                path = demos.demo_path(name)
                state = f"built at {path}" if demos.is_built(path) else f"not built (search-cli demo build {name})"
            print(f"demo:{name}\t{state}")
        return 0
    name = args.name.removeprefix("demo:")
    if name not in BUILT_DEMOS:
        if name in DEMO_MODELS:
            print(f"demo:{name} needs no build")
            return 0
        raise ModelError(f"unknown demo {args.name!r}; buildable: {', '.join(sorted(BUILT_DEMOS))}")
    recipe = BUILT_DEMOS[name]
    if args.steps is not None:
        if args.steps < 1:
            raise ModelError(f"--steps {args.steps} must be at least 1")
        recipe = replace(recipe, steps=args.steps)
    if args.seed is not None:
        recipe = replace(recipe, seed=args.seed)
    path = demos.demo_dir(name, recipe, rebuild=args.rebuild, progress=not args.quiet)
    info = json.loads((path / demos.COMPLETE_MARKER).read_text())
    print(f"demo:{name} ready at {path} ({info['params']:,} parameters, final training loss "
          f"{info['final_loss']:.3f}, built in {info['seconds']}s)")
    return 0
