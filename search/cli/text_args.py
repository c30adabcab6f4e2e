"""The text files of --calibration / --eval-text, read once with one-line errors."""

from __future__ import annotations

import argparse


def texts_from_args(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(calibration text, evaluation text) of --calibration / --eval-text; None where not given."""
    from search.data import read_text_file

    calibration = getattr(args, "calibration", None)
    held_out = getattr(args, "eval_text", None)
    return (read_text_file(calibration) if calibration else None,
            read_text_file(held_out, "evaluation text") if held_out else None)
