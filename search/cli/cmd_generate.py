"""``search-cli generate``: continue a prompt with a causal LM (original, export, or GGUF via llama.cpp)."""

from __future__ import annotations

import argparse
import json
import sys

from search.errors import DeviceFitError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate", help="generate text from a prompt and print the tokens/s",
        description="Continue a prompt with a causal LM: a model reference or export (run by PyTorch) or a "
                    ".gguf file (run by llama.cpp). Prints the text, then the decode speed on stderr.")
    p.add_argument("--model", default="demo:tinylm", metavar="REF",
                   help="directory, Hub id, demo:tinylm (default), a devicefit/hf export or a .gguf file")
    p.add_argument("--prompt", required=True, metavar="TEXT", help="the text to continue")
    p.add_argument("--max-new-tokens", type=int, default=64, metavar="N", help="tokens to generate (default 64)")
    p.add_argument("--temperature", type=float, default=0.0, metavar="T",
                   help="0 = greedy (default); > 0 samples from the softened distribution")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads (default: all available)")
    p.add_argument("--json", action="store_true", help="print one JSON object: text, tokens_per_second, ...")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from search.text_generation import generate

    if args.max_new_tokens < 1:
        raise DeviceFitError(f"--max-new-tokens {args.max_new_tokens} must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise DeviceFitError(f"--threads {args.threads} must be at least 1")
    if args.temperature < 0:
        raise DeviceFitError(f"--temperature {args.temperature} must be 0 (greedy) or more")
    result = generate(args.model, args.prompt, args.max_new_tokens, temperature=args.temperature, seed=args.seed,
                      threads=args.threads)
    if args.json:
        print(json.dumps({"prompt": args.prompt, **result.as_json()}))
        return 0
    print(args.prompt + result.text)
    tps = result.tokens_per_second
    speed = f"{tps:.1f} tokens/s" if tps == tps else "n/a (one token)"
    print(f"[{len(result.new_ids)} new tokens, decode {speed}, prefill {result.prefill_seconds * 1000:.1f} ms, "
          f"{result.runtime}, {result.threads} threads]", file=sys.stderr)
    return 0
