"""time_gguf: each case on several loaded contexts, the faster context's timing kept."""

import time

from search.hw_profiles import llamacpp_bench
from search.hw_profiles.llamacpp_bench import time_gguf


class _Context:
    """Stands in for a loaded llama.cpp context whose steps cost a fixed CPU time: the first context
    loaded per file is the slow one, as measured on this machine (see llamacpp_bench's module note)."""

    loaded: dict[str, int] = {}
    closed = 0

    def __init__(self, path, workload, threads):
        self.step_s = 0.004 if self.loaded.get(path, 0) == 0 else 0.001
        self.loaded[path] = self.loaded.get(path, 0) + 1

    def run(self) -> None:
        end = time.process_time() + self.step_s
        while time.process_time() < end:
            pass

    def close(self) -> None:
        type(self).closed += 1


def test_the_faster_of_the_loaded_contexts_is_kept_and_all_are_closed(monkeypatch):
    monkeypatch.setattr(llamacpp_bench, "GgufRun", _Context)
    _Context.loaded, _Context.closed = {}, 0
    timed = time_gguf({"a": ("a.gguf", "decode:8"), "b": ("b.gguf", "decode:8")}, rounds=3, instances=2)
    assert set(timed) == {"a", "b"}
    for timing in timed.values():
        assert 0.9 <= timing.median_ms < 2.5  # the 1 ms context, not the 4 ms one
    assert _Context.loaded == {"a.gguf": 2, "b.gguf": 2} and _Context.closed == 4


def test_one_instance_keeps_the_only_context(monkeypatch):
    monkeypatch.setattr(llamacpp_bench, "GgufRun", _Context)
    _Context.loaded, _Context.closed = {}, 0
    timed = time_gguf({"a": ("a.gguf", "decode:8")}, rounds=3, instances=1)
    assert timed["a"].median_ms >= 3.5
