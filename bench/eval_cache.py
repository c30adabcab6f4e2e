"""A memoised evaluate() for benchmarks: identical (model, data, stage, recipe) tasks are evaluated once.

Evaluation is deterministic, so arms and seeds that propose the same recipe pay once; the
counts of what each run *asked for* are kept apart from the count of real evaluations
(``builds``), so a table can report both.
"""

from __future__ import annotations

import json
from pathlib import Path


class CachedEvaluate:
    """evaluate_task memoised on disk; counts requests per stage and real evaluations."""

    def __init__(self, path: Path | None):
        self.path = path
        self.cache = json.loads(path.read_text()) if path is not None and path.is_file() else {}
        self.requests: dict[str, int] = {}
        self.builds = 0
        self.build_seconds = 0.0

    @staticmethod
    def key(task) -> str:
        record = task.spec.data_policy.record()
        if task.stage != "recover":
            record.pop("seed", None)  # the seed only steers recovery training: runs of any seed share the rest
        policy = json.dumps(record, sort_keys=True)
        return f"{task.spec.model}|{policy}|{task.stage}|{task.recipe.to_json()}"

    def __call__(self, task):
        from search.evaluation import evaluate_task
        from search.executor import EvalResult

        self.requests[task.stage] = self.requests.get(task.stage, 0) + 1
        key = self.key(task)
        if key in self.cache:
            return EvalResult(key=task.key, **self.cache[key])
        result = evaluate_task(task)
        self.builds += 1
        self.build_seconds += result.seconds
        self.cache[key] = {"quality": result.quality, "memory_bytes": result.memory_bytes, "seconds": result.seconds}
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.cache))
            tmp.replace(self.path)
        return result

    def counters(self) -> dict[str, float]:
        return {"requests": dict(self.requests), "builds": self.builds, "build_seconds": round(self.build_seconds, 1)}
