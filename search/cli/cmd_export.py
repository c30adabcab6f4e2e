"""``search-cli export``: write a compressed model in its runtime's format (gguf, hf or devicefit).

Two forms: a recipe given on the command line (``--model REF --bits 4 ... --out DIR``),
or a candidate of a saved search front (``search-cli export STUDY --candidate K --out DIR``).
``--format`` picks the format (search.cli.export_format); a format that cannot express the
candidate is refused with one line (exit code 2), never written as something else.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from search.cli.cmd_evaluate import RECIPE_OPTIONS, add_data_args
from search.cli.export_format import (
    device_format,
    filetype_format,
    load_hint,
    set_format_help,
    take_export_format,
    written_path,
)
from search.cli.recipe_args import add_recipe_args, recipe_from_args
from search.data import read_text_file
from search.data_policy import DataPolicy
from search.errors import DeviceFitError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="save a compressed model as GGUF, a Hugging Face checkpoint or devicefit's format",
        description="Compress a model with a recipe (or a saved search's candidate) and write it in the "
                    "device runtime's format: a GGUF file for llama.cpp, a directory plain transformers "
                    "loads (hf), or devicefit's own packed format; load it back with `--model PATH`.")
    p.add_argument("study", nargs="?", metavar="STUDY", help="a saved search; use with --candidate K")
    p.add_argument("--candidate", type=int, metavar="K", help="which candidate of the study's front to export")
    p.add_argument("--model", default=None, metavar="REF",
                   help="directory, config.json, Hub id or demo:minilm (default)")
    add_recipe_args(p)
    set_format_help(p)
    add_data_args(p)
    p.add_argument("--out", required=True, metavar="PATH",
                   help="output directory (gguf: a .gguf file, or a directory that gets model.gguf)")
    p.add_argument("--json", action="store_true", help="print one JSON object describing the export")
    p.set_defaults(func=run)


def _from_study(args: argparse.Namespace) -> tuple[str, object, DataPolicy, dict, str]:
    """(model ref, recipe, data policy, recorded recovery, device) of a saved candidate."""
    if args.candidate is None:
        raise DeviceFitError(f"say which candidate of study {args.study!r} to export: --candidate K")
    given = [f"--{name.replace('_', '-')}" for name in RECIPE_OPTIONS if getattr(args, name) is not None]
    given += [f"--{name.replace('_', '-')}" for name in ("samples", "calib_rows", "seq_len", "format")
              if getattr(args, name) is not None]
    if args.model is not None or given:
        raise DeviceFitError("a study's candidate brings its own model, recipe and data policy; drop "
                             + ", ".join(([] if args.model is None else ["--model"]) + given))
    from search.results import find_candidate

    try:
        spec, recipe, metrics = find_candidate(args.study, args.candidate)
    except (KeyError, FileNotFoundError, LookupError):
        raise DeviceFitError(f"no saved search {args.study!r} with a candidate {args.candidate}; "
                             "`search-cli show` lists saved searches") from None
    policy = spec.data_policy
    if metrics.get("data"):  # the policy the candidate was scored with, as its trial recorded it
        text = read_text_file(args.calibration) if args.calibration else spec.calibration_text
        held_out = read_text_file(args.eval_text, "evaluation text") if args.eval_text else spec.eval_text
        policy = DataPolicy.from_record(metrics["data"], text, full_eval_text=held_out)
    # a candidate the search recovered (spec.recover) is exported with its recovered weights
    return spec.model, recipe, policy, metrics.get("recovery") or {}, spec.device


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from search.cli.cmd_evaluate import policy_from_args
    from search.evaluation import check_sizes, loaded_model
    from search.export_candidate import export_candidate
    from search.memory import memory_report
    from search.models import load_graph

    recovery: dict = {}
    fmt = take_export_format(args)  # gguf / hf / devicefit; any other --format value is a file type (a recipe)
    if args.study is not None:
        ref, recipe, policy, recovery, device = _from_study(args)
        fmt = fmt or device_format(device)
    else:
        if args.candidate is not None:
            raise DeviceFitError("--candidate K needs the study it belongs to: search-cli export STUDY --candidate K")
        ref = args.model or "demo:minilm"
        fmt = fmt or (filetype_format(args.format) if args.format else "hf")  # no device: hf
        graph = load_graph(ref)
        recipe = recipe_from_args(args, graph)  # bad input fails before the weights load
        policy = policy_from_args(args)
        check_sizes(graph, policy.calib_rows, policy.seq_len)
    out = Path(args.out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DeviceFitError(f"output directory {str(out)!r} exists and is not empty; choose a new --out")
    # disable=None: the bar shows on a terminal only, so piped stderr carries nothing but errors
    with tqdm(total=2, desc="loading the model", file=sys.stderr, disable=None, leave=False,
              bar_format="{desc} [{n}/{total}] {elapsed}") as bar:
        loaded = loaded_model(ref)
        recipe.resolve(loaded.graph)
        bar.set_description("compressing and writing")
        bar.update()
        export_candidate(ref, recipe, out, policy=policy, recovery=recovery, format=fmt, loaded=loaded)
        bar.update()
    memory = memory_report(loaded.graph, recipe).total_bytes
    path = written_path(fmt, out)
    disk = path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    if args.json:
        print(json.dumps({"out": str(path), "format": fmt, "model": ref, "memory_bytes": int(memory),
                          "disk_bytes": disk, "recipe": recipe.model_dump(mode="json")}))
        return 0
    print(f"exported {ref} ({recipe.summary()}) as {fmt} to {path}")
    print(f"memory   {memory / 1e6:.2f} MB computed, {disk / 1e6:.2f} MB on disk")
    print(load_hint(fmt, path, loaded.graph.is_causal))
    return 0
