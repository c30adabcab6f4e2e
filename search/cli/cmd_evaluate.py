"""``search-cli evaluate``: apply one recipe to a model; print its quality and exact memory."""

from __future__ import annotations

import argparse
import json

from search.cli.recipe_args import add_recipe_args, recipe_from_args
from search.errors import DeviceFitError

# recipe options that conflict with the recipe an export or a saved study brings
RECIPE_OPTIONS = ("recipe", "bits", "sparsity", "rank", "width", "heads", "depth")


def add_data_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("calibration and evaluation text")
    g.add_argument("--calibration", metavar="FILE",
                   help="UTF-8 text file (default: the Python documentation shipped with the stdlib); "
                        "its first ~80%% calibrates, the rest evaluates")
    g.add_argument("--samples", type=int, default=16, metavar="N", help="token sequences per part (default 16)")
    g.add_argument("--seq-len", type=int, default=128, metavar="L", help="tokens per sequence (default 128)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate", help="apply a recipe to a model and print its quality and memory",
        description="Apply a compression recipe to a model and print its quality against the original "
                    "(cosine for encoders; kl and perplexity for causal LMs) and its exact memory.")
    p.add_argument("--model", default="demo:minilm", metavar="REF",
                   help="directory, config.json, Hub id or demo:minilm (default)")
    add_recipe_args(p)
    add_data_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object: quality, memory_bytes, recipe")
    p.add_argument("--recover", metavar="BUDGET",
                   help="recovery training (distillation / QAT) before scoring, e.g. 100steps or 30s")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from search.data import read_text_file
    from search.evaluators.pipeline import check_sizes, evaluate_export, evaluate_recipe, export_source
    from search.memory import memory_report
    from search.models import load_graph, load_model
    from search.recipe import CompressionConfig

    graph = load_graph(args.model)
    source = export_source(args.model)
    if source is not None:  # an export is scored against the model it was made from
        given = [f"--{name.replace('_', '-')}" for name in (*RECIPE_OPTIONS, "recover")
                 if getattr(args, name, None) is not None]
        if given:
            raise DeviceFitError(f"{args.model!r} is an export, already compressed by its recipe.json; "
                                 f"drop {', '.join(given)}")
    else:
        recipe = recipe_from_args(args, graph)  # bad input fails before the weights load
    check_sizes(graph, args.samples, args.seq_len)
    if getattr(args, "recover", None):
        from search.recovery.budget import parse_budget

        parse_budget(args.recover)  # a bad budget fails before the weights load
    text = read_text_file(args.calibration) if args.calibration else None
    if source is not None:
        result = evaluate_export(args.model, text=text, samples=args.samples, seq_len=args.seq_len, progress=True)
        recipe = result.recipe
    else:
        loaded = load_model(args.model)
        result = evaluate_recipe(loaded, recipe, text=text, samples=args.samples, seq_len=args.seq_len,
                                 progress=True)
    if getattr(args, "recover", None):
        from search.recovery.stage import recover_evaluation

        result = recover_evaluation(loaded, result, args.recover, text=text, samples=args.samples,
                                    seq_len=args.seq_len)
    if args.json:
        print(json.dumps(result.as_json()))
        return 0
    original = memory_report(graph, CompressionConfig()).total_bytes
    metrics = "  ".join(f"{name} {value:.6g}" for name, value in result.quality.items())
    metrics += "  (cosine 1 = same embeddings as the original)" if "cosine" in result.quality else \
        "  (kl: nats per token from the original's predictions, 0 = identical)"
    against = "" if source is None else f", compared with its source {source}"
    print(f"model    {args.model} ({graph.family}, {graph.num_blocks} blocks{against})")
    print(f"recipe   {recipe.summary()}")
    if getattr(result, "quality_before", None) is not None:
        before = "  ".join(f"{name} {value:.6g}" for name, value in result.quality_before.items())
        print(f"before   {before}  (recovery: {result.recovery.get('steps')} steps in "
              f"{result.recovery.get('seconds')}s, kept the {result.recovery.get('kept')} model)")
    print(f"quality  {metrics}")
    print(f"memory   {result.memory_bytes / 1e6:.2f} MB ({result.memory_bytes:,} bytes; "
          f"{original / max(1, result.memory_bytes):.2f}x smaller than the 16-bit model's {original / 1e6:.2f} MB)")
    return 0
