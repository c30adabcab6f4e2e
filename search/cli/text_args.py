"""The text files of --calibration / --eval-text, read once with one-line errors."""

from __future__ import annotations

import argparse


def add_text_args(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--calibration FILE and --eval-text FILE (SearchSpec calibration_text / eval_text)."""
    parser.add_argument("--calibration", metavar="FILE",
                        help="UTF-8 text file (SearchSpec calibration_text; default: the Python documentation "
                             "shipped with the stdlib); its first ~80%% calibrates, the rest evaluates (unless "
                             "--eval-text is given)")
    parser.add_argument("--eval-text", metavar="FILE",
                        help="your own held-out UTF-8 text to measure quality on, all of it (SearchSpec eval_text; "
                             "up to 16 MiB); calibration still takes the first part of --calibration")


def texts_from_args(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(calibration text, evaluation text) of --calibration / --eval-text; None where not given."""
    from search.data import read_text_file

    calibration = getattr(args, "calibration", None)
    held_out = getattr(args, "eval_text", None)
    return (read_text_file(calibration) if calibration else None,
            read_text_file(held_out, "evaluation text") if held_out else None)
