"""Write an export directory atomically: into a temporary sibling, then renamed into place.

A crash never leaves a half-written export under the requested name, and an existing
directory is replaced only when it is empty or a previous export (the caller says which).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from search.errors import DeviceFitError


@contextmanager
def staged_directory(out_dir: str | os.PathLike, replaceable: Callable[[Path], bool]) -> Iterator[Path]:
    """Yield an empty temporary directory; on success it becomes ``out_dir``."""
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or replaceable(out))):
        raise DeviceFitError(f"output directory {str(out)!r} exists and is not an export of this format; "
                             "choose a new or empty directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / out.name)  # moved aside first: the new export then takes the name in one rename
        os.rename(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
