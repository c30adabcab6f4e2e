"""``search-cli evaluate --model FILE.gguf``: score a GGUF, run by llama.cpp, against its source model."""

from __future__ import annotations

import argparse
import json
from typing import Any

from search.errors import DeviceFitError

# recipe options make no sense for a GGUF: the file is already compressed
_RECIPE_OPTIONS = ("recipe", "format", "bits", "sparsity", "rank", "width", "heads", "depth", "recover")


def run_gguf_evaluate(args: argparse.Namespace) -> int:
    from search.cli.text_args import texts_from_args
    from search.data_policy import DataPolicy
    from search.runtimes.llamacpp_quality import evaluate_gguf, read_gguf_info

    given = [f"--{n.replace('_', '-')}" for n in _RECIPE_OPTIONS if getattr(args, n, None) is not None]
    if given:
        raise DeviceFitError(f"{args.model!r} is a GGUF file, already compressed; drop {', '.join(given)}")
    text, eval_text = texts_from_args(args)
    info = read_gguf_info(args.model)
    base = DataPolicy.from_record(info.policy, text, full_eval_text=eval_text) if info.policy else DataPolicy()
    overrides: dict[str, Any] = {}
    if text is not None:
        overrides["text"] = text
    if eval_text is not None:
        overrides["eval_text"] = eval_text
    if getattr(args, "samples", None) is not None:
        overrides["eval_rows"] = args.samples
    if getattr(args, "seq_len", None) is not None:
        overrides["seq_len"] = args.seq_len
    policy = DataPolicy(**{**base.model_dump(), **overrides})
    result = evaluate_gguf(args.model, policy, threads=getattr(args, "threads", None), progress=True)
    if args.json:
        print(json.dumps(result))
        return 0
    quality = "  ".join(f"{k} {v:.6g}" if v is not None else f"{k} inf" for k, v in result["quality"].items())
    types = ", ".join(f"{n}×{c}" for n, c in sorted(result["tensor_types"].items()))
    print(f"model    {args.model} (GGUF run by llama.cpp, {result['threads']} threads; compared with its "
          f"source {result['source']})")
    print(f"tensors  {types}")
    print(f"quality  {quality}")
    print(f"memory   {result['memory_bytes'] / 1e6:.2f} MB of tensors ({result['file_bytes']:,} bytes on disk)")
    return 0
