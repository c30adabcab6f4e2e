"""DataPolicy: which text, and how much of it, turns a recipe into a scored candidate.

The same policy builds the compressed model (calibration rows for Wanda scores and
width-pruning importance), scores it (evaluation rows) and re-builds it for export,
so a candidate is reproducible from its record: model reference + recipe + policy
(+ the recovery steps it ran). Rows are spread evenly over the text's two disjoint
parts (search/data.py), so the policy needs no random seed; ``seed`` seeds recovery.
A held-out ``eval_text``, when given, replaces the eval part: all of it is scored on,
and calibration still takes the calib part of ``text``.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    pass

DEFAULT_CALIB_ROWS = 8
DEFAULT_EVAL_ROWS = 16
DEFAULT_SEQ_LEN = 128
RECORDED_TEXT_CHARS = 4096  # a longer text is recorded by its sha256 (the study's spec keeps it whole)
_TEXTS = (("text", "--calibration"), ("eval_text", "--eval-text"))  # field, the CLI option that gives it


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class DataPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str | None = Field(None, description="calibration/evaluation text; null = the stdlib's pydoc corpus")
    eval_text: str | None = Field(None, description="held-out evaluation text, scored on whole; "
                                                    "null = the evaluation part of `text`")
    calib_rows: int = Field(DEFAULT_CALIB_ROWS, ge=1, description="rows for data-aware transforms")
    eval_rows: int = Field(DEFAULT_EVAL_ROWS, ge=1, description="rows quality is measured on")
    seq_len: int = Field(DEFAULT_SEQ_LEN, ge=2, description="tokens per row")
    seed: int = Field(0, description="seed of recovery training")

    def text_sha256(self) -> str | None:
        return None if self.text is None else _sha256(self.text)

    def eval_text_sha256(self) -> str | None:
        return None if self.eval_text is None else _sha256(self.eval_text)

    def record(self) -> dict[str, Any]:
        """What a trial records: the numbers, and each text itself when it is short (else its hash;
        the study's spec keeps the full text). A policy without eval_text records no eval_text key,
        so its record reads as it did before eval_text existed."""
        data = self.model_dump(mode="json")
        if self.eval_text is None:
            del data["eval_text"]
        for name, _ in _TEXTS:
            value = getattr(self, name)
            if value is not None and len(value) > RECORDED_TEXT_CHARS:
                data[name] = None
                data[f"{name}_sha256"] = _sha256(value)
        return data

    @classmethod
    def from_record(cls, record: dict[str, Any], full_text: str | None = None, *,
                    full_eval_text: str | None = None) -> DataPolicy:
        """Inverse of record(); a hashed text is taken from ``full_text`` (``full_eval_text`` for the
        evaluation text) after checking the hash."""
        data = dict(record)
        given = {"text": full_text, "eval_text": full_eval_text}
        for name, option in _TEXTS:
            digest = data.pop(f"{name}_sha256", None)
            if digest is None:
                continue
            full = given[name]
            if full is None or _sha256(full) != digest:
                from search.errors import SpecError

                what = "calibration" if name == "text" else "evaluation"
                raise SpecError(f"the candidate was scored on a{'n' if name == 'eval_text' else ''} {what} text "
                                f"that is not available here (its sha256 does not match); pass the same "
                                f"{option} file")
            data[name] = full
        return cls.model_validate(data)
