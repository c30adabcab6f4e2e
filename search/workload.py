"""Workloads: what "latency" means for a candidate.

- ``encode:N``  one forward pass over N tokens (encoders, embeddings)
- ``prefill:N`` time to first token for an N-token prompt
- ``decode:N``  milliseconds per generated token at context length N
An optional ``xB`` suffix sets the batch (``encode:128x8``); batch 1 otherwise.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from search.errors import SpecError

_WORKLOAD = re.compile(r"(encode|prefill|decode):(\d+)(?:x(\d+))?")


class Workload(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["encode", "prefill", "decode"]
    tokens: int
    batch: int = 1

    @classmethod
    def parse(cls, text: str) -> Workload:
        m = _WORKLOAD.fullmatch(str(text).strip())
        if not m:
            raise SpecError(f"cannot read workload {text!r}: write encode:N, prefill:N or decode:N "
                            "with N a number of tokens (e.g. decode:512, or encode:128x8 for batch 8)")
        tokens, batch = int(m.group(2)), int(m.group(3) or 1)
        if tokens < 1 or batch < 1:
            raise SpecError(f"workload {text!r}: tokens and batch must be at least 1")
        return cls(kind=m.group(1), tokens=tokens, batch=batch)

    def __str__(self) -> str:
        return f"{self.kind}:{self.tokens}" + (f"x{self.batch}" if self.batch != 1 else "")

    @property
    def per_token(self) -> bool:
        """Whether tokens/s is meaningful for this workload (prefill and decode)."""
        return self.kind != "encode"
