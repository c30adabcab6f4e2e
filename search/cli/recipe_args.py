"""Recipe options shared by evaluate, export and predict: --recipe FILE or uniform shortcuts."""

from __future__ import annotations

import argparse
from pathlib import Path

from search.errors import RecipeError
from search.recipe import CompressionConfig, evenly_spaced_blocks, parse_recipe
from search.space.graph import ModelGraph


def _rank(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and value >= 1 else value


def add_recipe_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("recipe (a file, or one setting for every layer)")
    g.add_argument("--recipe", metavar="FILE", help="recipe JSON (a CompressionConfig)")
    g.add_argument("--format", metavar="NAME",
                   help="a runtime file type: llama.cpp's F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q5_0, Q5_1, Q4_K_M, "
                        "Q4_K_S, Q4_0, Q4_1, Q3_K_M, Q3_K_S, Q2_K or MLC's q4f16_1 (q4f16), q4f32_1, q3f16_1, "
                        "q0f16: its per-tensor mixture, embeddings and output head included")
    g.add_argument("--bits", type=int, help="weight bits: 16, 8, 6, 5, 4, 3 or 2")
    g.add_argument("--group-size", type=int, default=None, help="quantization group size (default 128)")
    g.add_argument("--symmetric", action="store_true", help="symmetric quantization")
    g.add_argument("--sparsity", type=float, help="fraction of weights pruned, in [0, 1)")
    g.add_argument("--sparsity-pattern", choices=["unstructured", "2:4", "channel"], default="unstructured")
    g.add_argument("--sparsity-score", choices=["magnitude", "wanda"], default="magnitude")
    g.add_argument("--method", choices=["rtn", "gptq"], default=None,
                   help="how weights are rounded: rtn (round to nearest, default) or gptq (GPTQ, with the "
                        "calibration rows); also applies to --format")
    g.add_argument("--act-order", action="store_true", help="GPTQ's columns in decreasing activation order")
    g.add_argument("--rank", type=_rank, help="low-rank rank: an integer, or a fraction of full rank like 0.25")
    g.add_argument("--width", type=float, help="fraction of MLP neurons kept, in (0, 1]")
    g.add_argument("--heads", type=float, help="fraction of attention heads kept, in (0, 1]")
    g.add_argument("--depth", type=float, help="fraction of blocks kept (evenly spaced), in (0, 1]")


def recipe_from_args(args: argparse.Namespace, graph: ModelGraph) -> CompressionConfig:
    shortcuts = [args.bits, args.sparsity, args.rank, args.width, args.heads, args.depth]
    if getattr(args, "format", None):
        return _filetype_recipe(args, graph)
    if getattr(args, "act_order", False) and getattr(args, "method", None) != "gptq":
        raise RecipeError("--act-order orders GPTQ's columns: add --method gptq")
    if args.recipe:
        if any(v is not None for v in shortcuts) or getattr(args, "method", None):
            raise RecipeError("give either --recipe FILE or the uniform options (--bits, --method, ...), not both")
        path = Path(args.recipe)
        if not path.is_file():
            raise RecipeError(f"recipe file {args.recipe!r} does not exist")
        recipe = parse_recipe(path.read_text())
    else:
        keep = evenly_spaced_blocks(graph.num_blocks, args.depth) if args.depth is not None else None
        recipe = CompressionConfig.uniform(
            bits=16 if args.bits is None else args.bits,
            group_size=128 if args.group_size is None else args.group_size,
            symmetric=args.symmetric,
            sparsity=0.0 if args.sparsity is None else args.sparsity,
            sparsity_pattern=args.sparsity_pattern, sparsity_score=args.sparsity_score,
            rank=args.rank, width=1.0 if args.width is None else args.width,
            heads=1.0 if args.heads is None else args.heads, keep_blocks=keep,
            method=getattr(args, "method", None) or "rtn", act_order=getattr(args, "act_order", False))
    recipe.resolve(graph)  # fail early, naming the layer or pattern that does not fit
    return recipe


def _filetype_recipe(args: argparse.Namespace, graph: ModelGraph) -> CompressionConfig:
    """--format NAME: the runtime's mixture for this model; --width/--heads/--depth may shrink it."""
    from search.formats.filetypes import recipe_for_filetype

    if args.recipe or any(v is not None for v in (args.bits, args.sparsity, args.rank, args.group_size)):
        raise RecipeError("--format names the whole weight format: drop --recipe/--bits/--group-size/"
                          "--sparsity/--rank (--width, --heads and --depth may go with it)")
    recipe = recipe_for_filetype(graph, args.format)
    keep = evenly_spaced_blocks(graph.num_blocks, args.depth) if args.depth is not None else None
    width = {"mlp": 1.0 if args.width is None else args.width, "heads": 1.0 if args.heads is None else args.heads}
    data = recipe.model_dump(mode="json")
    if getattr(args, "method", None) == "gptq":  # every quantized linear layer; embeddings stay rounded
        for setting in data["layers"].values():
            if setting["bits"] < 16:
                setting.update(method="gptq", act_order=bool(getattr(args, "act_order", False)))
    recipe = parse_recipe({**data, "width": width, "keep_blocks": keep})
    recipe.resolve(graph)
    return recipe
