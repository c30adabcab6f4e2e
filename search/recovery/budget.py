"""A recovery budget as written by users: '200steps' or a duration like '30s' / '2m'."""

from __future__ import annotations

import re
from dataclasses import dataclass

from search.errors import SpecError
from search.units import parse_duration_ms

_STEPS = re.compile(r"\s*(\d+)\s*steps?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class RecoveryBudget:
    steps: int | None = None
    seconds: float | None = None

    def __str__(self) -> str:
        return f"{self.steps}steps" if self.steps is not None else f"{self.seconds:g}s"


def parse_budget(text: str | RecoveryBudget) -> RecoveryBudget:
    """'200steps' -> 200 optimizer steps; '30s', '2m' -> a time limit per candidate."""
    if isinstance(text, RecoveryBudget):
        return text
    m = _STEPS.fullmatch(str(text))
    if m:
        steps = int(m.group(1))
        if steps < 1:
            raise SpecError(f"recovery budget {text!r} must be at least 1 step")
        return RecoveryBudget(steps=steps)
    try:
        ms = parse_duration_ms(text, "recovery budget")
    except SpecError:
        raise SpecError(f"cannot read recovery budget {text!r}: write a step count like '200steps' "
                        "or a time like '30s'") from None
    return RecoveryBudget(seconds=ms / 1000)
