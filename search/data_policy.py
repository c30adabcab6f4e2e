"""DataPolicy: which text, and how much of it, turns a recipe into a scored candidate.

The same policy builds the compressed model (calibration rows for Wanda scores and
width-pruning importance), scores it (evaluation rows) and re-builds it for export,
so a candidate is reproducible from its record: model reference + recipe + policy
(+ the recovery steps it ran). Rows are spread evenly over the text's two disjoint
parts (search/data.py), so the policy needs no random seed; ``seed`` seeds recovery.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_CALIB_ROWS = 8
DEFAULT_EVAL_ROWS = 16
DEFAULT_SEQ_LEN = 128


class DataPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str | None = Field(None, description="calibration/evaluation text; null = the stdlib's pydoc corpus")
    calib_rows: int = Field(DEFAULT_CALIB_ROWS, ge=1, description="rows for data-aware transforms")
    eval_rows: int = Field(DEFAULT_EVAL_ROWS, ge=1, description="rows quality is measured on")
    seq_len: int = Field(DEFAULT_SEQ_LEN, ge=2, description="tokens per row")
    seed: int = Field(0, description="seed of recovery training")

    def text_sha256(self) -> str | None:
        return None if self.text is None else hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def record(self) -> dict[str, Any]:
        """What a trial records: the numbers, and the text itself when it is short (else its hash;
        the study's spec keeps the full text)."""
        data = self.model_dump(mode="json")
        if self.text is not None and len(self.text) > 4096:
            data["text"] = None
            data["text_sha256"] = self.text_sha256()
        return data

    @classmethod
    def from_record(cls, record: dict[str, Any], full_text: str | None = None) -> DataPolicy:
        """Inverse of record(); a hashed text is taken from ``full_text`` after checking the hash."""
        data = dict(record)
        digest = data.pop("text_sha256", None)
        if digest is not None:
            from search.errors import SpecError

            if full_text is None or hashlib.sha256(full_text.encode("utf-8")).hexdigest() != digest:
                raise SpecError("the candidate was scored on a text that is not available here "
                                "(its sha256 does not match); pass the same --calibration file")
            data["text"] = full_text
        return cls.model_validate(data)
