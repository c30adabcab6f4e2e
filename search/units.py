"""Parse and format quantities with explicit units ("200ms", "1.5s", "512MB", "10m").

A bare number is refused: whether "200" means ms or s is exactly the mistake a
budget must not silently make.
"""

import math
import re

from search.errors import SpecError

_NUMBER = r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*"

_TIME_UNITS_MS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1000.0, "sec": 1000.0, "m": 60_000.0,
                  "min": 60_000.0, "h": 3_600_000.0}
_BYTE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def _split(text: object, what: str, example: str, units: str) -> tuple[float, str]:
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise SpecError(f"{what} must be a string with a unit, like {example!r}")
    m = re.fullmatch(_NUMBER + r"([A-Za-zµ]*)\s*", str(text))
    if not m:
        raise SpecError(f"cannot read {what} {text!r}: write a number and a unit, like {example!r}")
    value, unit = float(m.group(1)), m.group(2)
    if not unit:
        raise SpecError(f"{what} {text!r} has no unit: add one of {units} (e.g. {example!r})")
    return value, unit


def parse_duration_ms(text: object, what: str = "duration") -> float:
    """'200ms' -> 200.0, '1.5s' -> 1500.0, '10m' -> 600000.0."""
    value, unit = _split(text, what, "200ms", "us, ms, s, m, h")
    factor = _TIME_UNITS_MS.get(unit.lower() if unit != "µs" else unit)
    if factor is None:
        raise SpecError(f"{what} {text!r}: unknown time unit {unit!r}; use us, ms, s, m or h")
    if value <= 0:
        raise SpecError(f"{what} {text!r} must be positive")
    if not math.isfinite(value * factor):
        raise SpecError(f"{what} {text!r} is not a finite duration")
    return value * factor


def parse_bytes(text: object, what: str = "size") -> int:
    """'512MB' -> 512_000_000, '2GiB' -> 2147483648 (SI and binary prefixes)."""
    value, unit = _split(text, what, "512MB", "B, KB, MB, GB, KiB, MiB, GiB")
    factor = _BYTE_UNITS.get(unit.upper())
    if factor is None:
        raise SpecError(f"{what} {text!r}: unknown size unit {unit!r}; use B, KB, MB, GB, KiB, MiB or GiB")
    if value <= 0:
        raise SpecError(f"{what} {text!r} must be positive")
    if not math.isfinite(value * factor):
        raise SpecError(f"{what} {text!r} is not a finite size")
    return int(round(value * factor))


def format_ms(ms: float) -> str:
    return f"{ms / 1000:.2f}s" if ms >= 1000 else f"{ms:.1f}ms" if ms >= 1 else f"{ms * 1000:.0f}us"


def format_bytes(n: float) -> str:
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= factor:
            return f"{n / factor:.2f}{unit}"
    return f"{int(n)}B"
