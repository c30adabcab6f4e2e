"""``search-cli export --format``: which format the export is written in.

One option, two kinds of value: an export format (gguf, hf, devicefit), or a runtime file type
(Q4_K_M, q4f16_1, ...; see recipe_args), which names the recipe AND implies its runtime's format
(gguf for llama.cpp's types, hf for MLC's). Without --format the device decides: gguf when its
profile's runtime is llama.cpp, else hf; a plain --model export has no device, so hf.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from search.exporters import FORMATS, default_format, gguf_path

FORMAT_HELP = ("the export format: gguf (llama.cpp), hf (plain transformers; quantized layers in "
               "compressed-tensors) or devicefit (devicefit's own packed format); or a runtime file type "
               "(llama.cpp's Q4_K_M, Q8_0, ... -> gguf; MLC's q4f16_1, ... -> hf), which also sets the recipe. "
               "Default: the device's runtime format (gguf for llama.cpp devices, else hf)")


def set_format_help(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if action.dest == "format":
            action.help = FORMAT_HELP
            action.metavar = "FORMAT"


def take_export_format(args: argparse.Namespace) -> str | None:
    """The export format named by --format (then removed from args, so it is no recipe), else None."""
    value = (getattr(args, "format", None) or "").strip().lower()
    if value in FORMATS:
        args.format = None
        return value
    return None


def filetype_format(filetype: str) -> str:
    """The format a runtime file type is written in."""
    from search.errors import RecipeError
    from search.formats.filetypes import FILETYPES, runtime_of

    try:
        return "gguf" if runtime_of(filetype) == "llama.cpp" else "hf"
    except RecipeError:
        raise RecipeError(f"unknown --format {filetype!r}: use {', '.join(FORMATS)}, or a runtime file type "
                          f"({', '.join(FILETYPES)})") from None


def device_format(device: str | None) -> str:
    """The format of a device profile's runtime; hf when there is no (readable) device."""
    if not device:
        return "hf"
    from search.errors import DeviceFitError
    from search.hw_profiles.profile import load_profile

    try:
        return default_format(load_profile(device).runtime)
    except DeviceFitError:
        return "hf"


def written_path(fmt: str, out: Path) -> Path:
    return gguf_path(out) if fmt == "gguf" else out


def load_hint(fmt: str, path: Path, causal: bool) -> str:
    if fmt == "gguf":  # an encoder has no text to generate: llama.cpp's embedding tool runs it
        tool = "llama-cli" if causal else "llama-embedding"
        return f"run it   llama.cpp: {tool} -m {path}, or --model {path} in search-cli evaluate"
    if fmt == "hf":
        auto = "AutoModelForCausalLM" if causal else "AutoModel"
        return f"load it  transformers.{auto}.from_pretrained({str(path)!r}) (no devicefit needed)"
    return f"load it  search.load_compressed({str(path)!r}) in Python, or --model {path} in search-cli"
