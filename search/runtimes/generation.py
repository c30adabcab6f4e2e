"""One generated continuation and its speed, whichever runtime produced it (llama.cpp or PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Generation:
    prompt_ids: list[int]
    new_ids: list[int]
    text: str  # the continuation only
    prefill_seconds: float  # the prompt's forward pass (it also yields the first new token)
    decode_seconds: float  # every later token: one forward pass each
    threads: int
    runtime: str  # "llama.cpp" or "torch"

    @property
    def tokens_per_second(self) -> float:
        """Decode speed: tokens after the first, per second of decoding."""
        steps = max(0, len(self.new_ids) - 1)
        return steps / self.decode_seconds if self.decode_seconds > 0 and steps else float("nan")

    def as_json(self) -> dict[str, Any]:
        tps = self.tokens_per_second
        return {"text": self.text, "new_tokens": len(self.new_ids), "prompt_tokens": len(self.prompt_ids),
                "tokens_per_second": None if tps != tps else round(tps, 2),
                "prefill_seconds": round(self.prefill_seconds, 4), "decode_seconds": round(self.decode_seconds, 4),
                "threads": self.threads, "runtime": self.runtime}


def pick_token(logits: Any, temperature: float, rng: Any) -> int:
    """Greedy at temperature 0, else a sample from softmax(logits / temperature)."""
    import numpy as np

    logits = np.asarray(logits, dtype=np.float64)
    if temperature <= 0:
        return int(np.argmax(logits))
    z = logits / temperature
    p = np.exp(z - z.max())
    return int(rng.choice(len(p), p=p / p.sum()))
