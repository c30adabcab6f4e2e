"""What a submitted SearchSpec must satisfy on this server beyond the schema: text that can be stored,
and a ceiling on every cost (settings.Limits). Each refusal names the field and the limit.

Text: JSON can carry a NUL byte or a lone UTF-16 surrogate ("\\ud800"), which a file path, a database
row or a UTF-8 encoder cannot; they are refused as validation errors (422) naming the field.
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError

from search.errors import SpecError
from search.spec import SearchSpec
from service.settings import Limits

MAX_SEED = 2**32 - 1  # the samplers seed NumPy, which takes 32-bit seeds


def check_text(spec: SearchSpec) -> None:
    """Every string in the spec is storable text: no NUL byte, no lone surrogate."""
    for path, text in _strings(spec.model_dump(), ()):
        problem = None
        if "\x00" in text:
            problem = "contains a NUL byte"
        else:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                problem = "contains a lone surrogate (not valid Unicode text)"
        if problem:
            raise RequestValidationError([{"loc": ("body", *path), "msg": problem, "type": "value_error"}])


def _strings(value: Any, path: tuple) -> Any:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, path)
            yield from _strings(item, (*path, key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _strings(item, (*path, i))


def check_limits(spec: SearchSpec, limits: Limits) -> SearchSpec:
    """The spec within this server's limits (a missing time_limit becomes the server's), or SpecError."""
    def over(field: str, value: Any, limit: Any, env: str) -> None:
        raise SpecError(f"{field}: {value} is more than this server allows ({limit}; set by {env})")

    if spec.trials > limits.max_trials:
        over("trials", spec.trials, limits.max_trials, "DEVICEFIT_MAX_TRIALS")
    if spec.seq_len > limits.max_seq_len:
        over("seq_len", spec.seq_len, limits.max_seq_len, "DEVICEFIT_MAX_SEQ_LEN")
    if spec.calib_samples > limits.max_calib_samples:
        over("calib_samples", spec.calib_samples, limits.max_calib_samples, "DEVICEFIT_MAX_CALIB_SAMPLES")
    if not 0 <= spec.seed <= MAX_SEED:
        raise SpecError(f"seed: {spec.seed} must be between 0 and {MAX_SEED}")
    if spec.calibration_text is not None and len(spec.calibration_text) > limits.max_calibration_chars:
        over("calibration_text", f"{len(spec.calibration_text)} characters", limits.max_calibration_chars,
             "DEVICEFIT_MAX_CALIBRATION_CHARS")
    if spec.eval_text is not None and len(spec.eval_text) > limits.max_calibration_chars:
        over("eval_text", f"{len(spec.eval_text)} characters", limits.max_calibration_chars,
             "DEVICEFIT_MAX_CALIBRATION_CHARS")
    if spec.recover is not None:
        from search.recovery.budget import parse_budget

        budget = parse_budget(spec.recover)
        if budget.steps is not None and budget.steps > limits.max_recovery_steps:
            over("recover", spec.recover, f"{limits.max_recovery_steps}steps", "DEVICEFIT_MAX_RECOVERY_STEPS")
        if budget.seconds is not None and budget.seconds > limits.max_recovery_s:
            over("recover", spec.recover, f"{limits.max_recovery_s:g}s", "DEVICEFIT_MAX_RECOVERY_S")
    if spec.time_limit_s is None:
        return spec.model_copy(update={"time_limit": f"{limits.max_search_s:g}s"})
    if spec.time_limit_s > limits.max_search_s:
        over("time_limit", spec.time_limit, f"{limits.max_search_s:g}s", "DEVICEFIT_MAX_SEARCH_S")
    return spec


def check_eval_text(spec: SearchSpec) -> None:
    """A held-out eval_text too short for the evaluation rows is a 422 now (counted with the model's
    tokenizer), not a job that fails once a worker picks it up."""
    from search.errors import DeviceFitError, ModelError
    from search.evaluation import check_eval_rows

    try:
        check_eval_rows(spec.model, spec.data_policy)
    except ModelError:
        return  # the model itself was checked before; its tokenizer is the worker's business
    except DeviceFitError as exc:
        error = {"loc": ("body", "eval_text"), "msg": str(exc), "type": "value_error"}
        raise RequestValidationError([error]) from None
