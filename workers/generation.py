"""The "try it" box's worker side: continue a prompt with one trial's candidate of a search.

The candidate is rebuilt through the one evaluation path (search.evaluation.build) from the record
its trial stored - recipe, data policy, recovery - exactly as the search built the model it scored,
and run by search.generate (greedy). Building is the slow part (seconds; calibration for data-aware
recipes), so each worker process keeps the last candidate it built: a second prompt for the same
candidate only decodes.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any

from search.spec import SearchSpec

_last: dict[str, Any] = {}  # {"key": ..., "candidate": LoadedModel}: one candidate per process
_lock = threading.Lock()


def candidate_key(spec: SearchSpec, record: dict[str, Any]) -> str:
    """What determines the built model: the model, the recipe, the data policy and the recovery."""
    return json.dumps([spec.model, record.get("recipe"), record.get("data"), record.get("recovery"),
                       spec.calibration_text if record.get("data") is None else None], sort_keys=True)


def build_candidate(spec: SearchSpec, record: dict[str, Any]) -> Any:
    """The candidate as a LoadedModel (the original's tokenizer and graph, the compressed module)."""
    from search.data_policy import DataPolicy
    from search.evaluation import build, loaded_model, runs_in_float32
    from search.recipe import CompressionConfig

    loaded = loaded_model(spec.model)
    recipe = CompressionConfig.model_validate(record["recipe"])
    policy = spec.data_policy
    if record.get("data"):  # the policy the candidate was scored with, as its trial recorded it
        policy = DataPolicy.from_record(record["data"], spec.calibration_text)
    compressed = build(loaded, recipe, policy, record.get("recovery") or {})
    if runs_in_float32(compressed, recipe):
        compressed = compressed.float()  # as it was scored (search.evaluation.score)
    compressed.eval()
    return dataclasses.replace(loaded, model=compressed)


def cached_candidate(spec: SearchSpec, record: dict[str, Any]) -> tuple[Any, bool]:
    """(candidate, whether it was already built in this process)."""
    key = candidate_key(spec, record)
    with _lock:
        if _last.get("key") == key:
            return _last["candidate"], True
        _last.clear()  # free the previous candidate before building the next
    candidate = build_candidate(spec, record)
    with _lock:
        _last.update(key=key, candidate=candidate)
    return candidate, False


def generate_for_trial(spec: SearchSpec, trial: int, prompt: str, max_new_tokens: int,
                       record: dict[str, Any] | None = None) -> dict[str, Any]:
    """Greedy continuation of `prompt` by trial `trial`'s candidate: the text, its speed, and whether the
    candidate came from this process's cache. `record` is the trial's candidate record (read from the
    study when not given)."""
    import time

    from search.text_generation import generate
    from workers.artifacts import trial_record

    started = time.perf_counter()
    candidate, cached = cached_candidate(spec, record if record is not None else trial_record(spec, trial))
    built_s = time.perf_counter() - started
    result = generate(candidate, prompt, max_new_tokens)
    return {**result.as_json(), "trial": trial, "cached": cached, "build_seconds": round(built_s, 4)}
