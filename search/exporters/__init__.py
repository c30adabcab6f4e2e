"""Export a compressed model in the format its runtime reads.

- ``gguf``: one file llama.cpp loads (search.runtimes.gguf_writer);
- ``hf``: a directory plain transformers loads (dense bf16, quantized layers in compressed-tensors);
- ``devicefit``: devicefit's own packed format (search.compress.export), for what neither can express.

A format that cannot express the candidate refuses with a DeviceFitError naming the one to use;
it never writes something else than what was scored. Importing this package does not import torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from search.errors import DeviceFitError

FORMATS = ("gguf", "hf", "devicefit")
GGUF_FILE = "model.gguf"


def default_format(runtime: str | None) -> str:
    """The format of a device's runtime: gguf for llama.cpp, else hf (also for an unknown device)."""
    return "gguf" if runtime and "llama.cpp" in runtime.lower() else "hf"


def check_format(fmt: str) -> str:
    name = (fmt or "").strip().lower()
    if name not in FORMATS:
        raise DeviceFitError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    return name


def gguf_path(out: str | os.PathLike) -> Path:
    """``out`` itself when it names a .gguf file, else ``out/model.gguf``."""
    path = Path(out).expanduser()
    return path if path.suffix.lower() == ".gguf" else path / GGUF_FILE


def export_model(loaded: Any, compressed: Any, recipe: Any, out: str | os.PathLike, format: str,
                 *, policy: Any = None, extra_files: dict[str, str] | None = None) -> Path:
    """Write ``compressed`` (built from ``loaded`` by ``recipe``) to ``out`` in ``format``; returns the path written.

    policy: the DataPolicy the candidate was scored with (recorded in a GGUF's metadata); extra_files:
    text files written beside a devicefit or hf export (e.g. that policy's record).
    """
    fmt = check_format(format)
    if fmt == "devicefit":
        from search.compress.export import export_compressed

        return export_compressed(loaded, compressed, recipe, out, **({"extra_files": extra_files} if extra_files else {}))
    if fmt == "hf":
        from search.exporters.hf import write_hf

        return write_hf(loaded, compressed, recipe, out, extra_files=extra_files)
    return _write_gguf(loaded, compressed, recipe, out, policy)


def _write_gguf(loaded: Any, compressed: Any, recipe: Any, out: str | os.PathLike, policy: Any) -> Path:
    check_gguf_expressible(compressed)
    try:
        import gguf  # noqa: F401 - the writer imports it only when it writes
    except ModuleNotFoundError:
        raise DeviceFitError("--format gguf needs the gguf package: pip install gguf "
                             "(or export with --format hf)") from None
    from search.runtimes.gguf_writer import write_gguf

    return write_gguf(compressed, loaded.tokenizer, recipe, gguf_path(out), source=loaded.ref, policy=policy)


def check_gguf_expressible(compressed: Any) -> None:
    """GGUF stores GGUF block types: devicefit's own b-bit groups would be written dense, so they are refused."""
    from search.compress.modules import PackedLinear

    for name, module in compressed.named_modules():
        if isinstance(module, PackedLinear) and module.bits < 16:
            raise DeviceFitError(
                f"--format gguf cannot express layer {name.removesuffix('.table')!r}: devicefit's own "
                f"{module.bits}-bit groups of {module.group_size} are no GGUF type; choose GGUF types in the "
                "recipe (e.g. --format Q4_K_M, or a layer \"format\": \"Q4_K\"), or export with --format hf")


__all__ = ["FORMATS", "check_format", "default_format", "export_model", "gguf_path"]
