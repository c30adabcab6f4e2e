"""``search-cli export``: save a compressed model (safetensors + recipe + config) to a directory.

Two forms: a recipe given on the command line (``--model REF --bits 4 ... --out DIR``),
or a candidate of a saved search front (``search-cli export STUDY --candidate K --out DIR``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from search.cli.cmd_evaluate import RECIPE_OPTIONS, add_data_args
from search.cli.recipe_args import add_recipe_args, recipe_from_args
from search.errors import DeviceFitError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="save a compressed model to a directory",
        description="Compress a model with a recipe (or a saved search's candidate) and save it as "
                    "safetensors + recipe.json + config.json; load it back with `--model DIR`.")
    p.add_argument("study", nargs="?", metavar="STUDY", help="a saved search; use with --candidate K")
    p.add_argument("--candidate", type=int, metavar="K", help="which candidate of the study's front to export")
    p.add_argument("--model", default=None, metavar="REF",
                   help="directory, config.json, Hub id or demo:minilm (default)")
    add_recipe_args(p)
    add_data_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--json", action="store_true", help="print one JSON object describing the export")
    p.set_defaults(func=run)


def _from_study(args: argparse.Namespace) -> tuple[str, object, str | None, int, int]:
    """(model ref, recipe, text, samples, seq_len) of a saved candidate."""
    if args.candidate is None:
        raise DeviceFitError(f"say which candidate of study {args.study!r} to export: --candidate K")
    given = [f"--{name.replace('_', '-')}" for name in RECIPE_OPTIONS if getattr(args, name) is not None]
    if args.model is not None or given:
        raise DeviceFitError("a study's candidate brings its own model and recipe; drop "
                             + ", ".join(([] if args.model is None else ["--model"]) + given))
    try:
        from search.results import find_candidate
    except ModuleNotFoundError as exc:
        if exc.name != "search.results":
            raise
        raise DeviceFitError("this installation cannot read saved searches (search.results is missing)") from None
    try:
        spec, recipe, _metrics = find_candidate(args.study, args.candidate)
    except (KeyError, FileNotFoundError, LookupError):
        raise DeviceFitError(f"no saved search {args.study!r} with a candidate {args.candidate}; "
                             "`search-cli show` lists saved searches") from None
    # a candidate the search recovered (spec.recover) is exported with its recovered weights
    args.recovered = (_metrics.get("recovery") or {}, spec.seed)
    return spec.model, recipe, spec.calibration_text, spec.calib_samples, spec.seq_len


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from search.data import read_text_file
    from search.evaluators.pipeline import check_sizes, export
    from search.memory import memory_report
    from search.models import load_graph, load_model

    if args.study is not None:
        ref, recipe, text, samples, seq_len = _from_study(args)
        if args.calibration:
            text = read_text_file(args.calibration)
    else:
        if args.candidate is not None:
            raise DeviceFitError("--candidate K needs the study it belongs to: search-cli export STUDY --candidate K")
        ref = args.model or "demo:minilm"
        graph = load_graph(ref)
        recipe = recipe_from_args(args, graph)  # bad input fails before the weights load
        text = read_text_file(args.calibration) if args.calibration else None
        samples, seq_len = args.samples, args.seq_len
        check_sizes(graph, samples, seq_len)
    out = Path(args.out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DeviceFitError(f"output directory {str(out)!r} exists and is not empty; choose a new --out")
    # disable=None: the bar shows on a terminal only, so piped stderr carries nothing but errors
    with tqdm(total=2, desc="loading the model", file=sys.stderr, disable=None, leave=False,
              bar_format="{desc} [{n}/{total}] {elapsed}") as bar:
        loaded = load_model(ref)
        recipe.resolve(loaded.graph)
        bar.set_description("compressing and writing")
        bar.update()
        compressed = None
        recovery, seed = getattr(args, "recovered", None) or ({}, 0)
        if recovery.get("kept") == "recovered":
            from search.recovery.stage import recovered_model

            compressed = recovered_model(loaded, recipe, int(recovery["steps"]), text=text, samples=samples,
                                         seq_len=seq_len, seed=seed)
        export(loaded, recipe, out, compressed=compressed, text=text, samples=samples, seq_len=seq_len)
        bar.update()
    memory = memory_report(loaded.graph, recipe).total_bytes
    disk = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    if args.json:
        print(json.dumps({"out": str(out), "model": ref, "memory_bytes": int(memory), "disk_bytes": disk,
                          "recipe": recipe.model_dump(mode="json")}))
        return 0
    print(f"exported {ref} ({recipe.summary()}) to {out}")
    print(f"memory   {memory / 1e6:.2f} MB computed, {disk / 1e6:.2f} MB on disk")
    print(f"load it  search.load_compressed({str(out)!r}) in Python, or --model {out} in search-cli")
    return 0
