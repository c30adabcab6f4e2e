"""``search-cli evaluate``: apply one recipe to a model; print its quality and exact memory."""

from __future__ import annotations

import argparse
import json

from search.cli.recipe_args import add_recipe_args, recipe_from_args
from search.cli.text_args import add_text_args, texts_from_args
from search.data_policy import DataPolicy
from search.errors import DeviceFitError

# recipe options that conflict with the recipe an export or a saved study brings
RECIPE_OPTIONS = ("recipe", "bits", "sparsity", "rank", "width", "heads", "depth")


def add_data_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("calibration and evaluation text")
    add_text_args(g)
    g.add_argument("--samples", type=int, default=None, metavar="N",
                   help="token sequences quality is measured on (default 16, or what an export records)")
    g.add_argument("--calib-rows", type=int, default=None, metavar="N",
                   help="token sequences for Wanda scores and width importance (default 8)")
    g.add_argument("--seq-len", type=int, default=None, metavar="L", help="tokens per sequence (default 128)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate", help="apply a recipe to a model and print its quality and memory",
        description="Apply a compression recipe to a model and print its quality against the original "
                    "(cosine for encoders; kl, perplexity and top1 for causal LMs) and its exact memory.")
    p.add_argument("--model", default="demo:minilm", metavar="REF",
                   help="directory, config.json, Hub id, demo:minilm (default), or a .gguf file (run by llama.cpp)")
    add_recipe_args(p)
    add_data_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object: quality, memory_bytes, recipe")
    p.add_argument("--recover", metavar="BUDGET",
                   help="recovery training (distillation / QAT) before scoring, e.g. 100steps or 30s")
    p.set_defaults(func=run)


def policy_from_args(args: argparse.Namespace, default: DataPolicy | None = None,
                     texts: tuple[str | None, str | None] | None = None) -> DataPolicy:
    """The data policy the options describe; options left out keep ``default``'s values.
    ``texts``: what texts_from_args already read (else the files are read here)."""
    base = default or DataPolicy()
    text, eval_text = texts or texts_from_args(args)
    return DataPolicy(text=text or base.text, eval_text=eval_text or base.eval_text,
                      calib_rows=base.calib_rows if args.calib_rows is None else args.calib_rows,
                      eval_rows=base.eval_rows if args.samples is None else args.samples,
                      seq_len=base.seq_len if args.seq_len is None else args.seq_len, seed=base.seed)


def recorded_export_policy(ref: str, texts: tuple[str | None, str | None]) -> DataPolicy | None:
    """The policy an export records, its hashed (long) texts taken from --calibration / --eval-text."""
    import json
    from pathlib import Path

    from search.export_candidate import POLICY_FILE

    path = Path(ref).expanduser() / POLICY_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        return DataPolicy.from_record(record, texts[0], full_eval_text=texts[1])
    except DeviceFitError:
        raise  # a hashed text that does not match: already one line naming the option
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise DeviceFitError(f"{str(path)!r} is not a valid data policy: {str(exc).splitlines()[0]}") from None


def run(args: argparse.Namespace) -> int:
    from search.evaluation import check_eval_rows, check_sizes, evaluate_recipe, loaded_model
    from search.export_candidate import evaluate_export, export_source
    from search.memory import memory_report
    from search.models import load_graph
    from search.recipe import CompressionConfig

    if args.model.lower().endswith(".gguf"):  # a GGUF file is run by llama.cpp
        from search.cli.gguf_evaluate import run_gguf_evaluate

        return run_gguf_evaluate(args)
    graph = load_graph(args.model)
    source = export_source(args.model)
    texts = texts_from_args(args)  # a bad text file fails before the weights load
    if source is not None:  # an export is scored against the model it was made from
        given = [f"--{name.replace('_', '-')}" for name in (*RECIPE_OPTIONS, "recover")
                 if getattr(args, name, None) is not None]
        if given:
            raise DeviceFitError(f"{args.model!r} is an export, already compressed by its recipe.json; "
                                 f"drop {', '.join(given)}")
        policy = policy_from_args(args, recorded_export_policy(args.model, texts), texts)
    else:
        recipe = recipe_from_args(args, graph)  # bad input fails before the weights load
        policy = policy_from_args(args, texts=texts)
    check_sizes(graph, policy.eval_rows, policy.seq_len)
    check_eval_rows(source or args.model, policy)  # a too-short --eval-text, from the tokenizer alone
    if getattr(args, "recover", None):
        from search.recovery.budget import parse_budget

        parse_budget(args.recover)  # a bad budget fails before the weights load
    if source is not None:
        result = evaluate_export(args.model, policy, progress=True)
        recipe = result.recipe
    else:
        result = evaluate_recipe(loaded_model(args.model), recipe, policy,
                                 recover_budget=getattr(args, "recover", None), progress=True)
    if args.json:
        print(json.dumps(result.as_json()))
        return 0
    original = memory_report(graph, CompressionConfig()).total_bytes
    metrics = "  ".join(f"{name} {value:.6g}" for name, value in result.quality.items())
    metrics += "  (cosine 1 = same embeddings as the original)" if "cosine" in result.quality else \
        "  (kl: nats per token from the original's predictions, 0 = identical; top1: share of tokens " \
        "where the greedy next token is the original's)"
    against = "" if source is None else f", compared with its source {source}"
    print(f"model    {args.model} ({graph.family}, {graph.num_blocks} blocks{against})")
    print(f"recipe   {recipe.summary()}")
    if result.quality_before is not None:
        before = "  ".join(f"{name} {value:.6g}" for name, value in result.quality_before.items())
        print(f"before   {before}  (recovery: {result.recovery.get('steps')} steps in "
              f"{result.recovery.get('seconds')}s, kept the {result.recovery.get('kept')} model)")
    print(f"quality  {metrics}")
    print(f"memory   {result.memory_bytes / 1e6:.2f} MB ({result.memory_bytes:,} bytes; "
          f"{original / max(1, result.memory_bytes):.2f}x smaller than the 16-bit model's {original / 1e6:.2f} MB)")
    return 0
