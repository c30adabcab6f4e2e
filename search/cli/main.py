"""Entry point of ``search-cli``.

Each subcommand lives in ``search/cli/cmd_<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func(args) -> int``.
User errors (DeviceFitError) become one line on stderr and exit code 2; an
unexpected exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from search.errors import DeviceFitError

# subcommand modules, in the order `search-cli --help` lists them
COMMANDS = ("search", "show", "evaluate", "export", "generate", "predict", "profile", "calibrate",
            "worker", "serve", "demo")
DEFAULT_COMMAND = "search"


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="search-cli",
                           description="devicefit: search how to compress a model to fit a device.")
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"search.cli.cmd_{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"search.cli.cmd_{name}":
                continue  # subcommand not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv.insert(0, DEFAULT_COMMAND)  # `search-cli --device rpi5 ...` means `search-cli search ...`
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except DeviceFitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
