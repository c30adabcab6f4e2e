"""Timing GGUF models in llama.cpp (through llama-cpp-python): decode and prefill, interleaved, with spread.

- ``export_for_timing``: a model + recipe -> a GGUF file llama.cpp runs. ``exact=True`` quantizes the
  real weights (what ``predict --measure`` times for a real model); otherwise the structure is built
  without quantizing and every GGUF tensor is filled with one valid quantized row repeated (speed in
  llama.cpp does not depend on the values; this makes 100M-parameter synthetic models in a second).
- ``GgufRun``: one loaded model and workload; calling it runs one unit: a prompt of N tokens
  (prefill: time to the first token, last logits only), one new token after a context of exactly
  N (decode: the cache entry is removed again after each step), or N tokens through an encoder
  (encode: every row's hidden state, as an embedding model returns them).
- ``time_interleaved``: every case once per round, rounds repeated, median and spread per case, so a
  burst of load on the shared machine hits all cases alike.
- ``time_gguf``: GGUF files x workloads timed that way, each case on ``INSTANCES`` separately loaded
  contexts, the faster context's median kept. Measured here (2026-11-29, one thread, warm width-512
  models): the first context loaded on a freshly written file sometimes runs a short-context decode
  step persistently 1.3-2x slower than every later context on the same file (0.27 vs 0.21 ms, 1.10 vs
  0.57 ms, 1.51 vs 0.77 ms), with a small spread, so more rounds cannot average it out; the second
  context never showed it. The effect belongs to the loaded context, not to the model.

Threads: llama.cpp's thread pool spins while it waits for its slowest thread, so on a loaded machine a
multi-thread step waits for a descheduled thread: measured here (2 cores, load average 9) one Q4_0
decode step took 16 ms at best, 40-72 ms median and up to 1.8 s with 2 threads, while with 1 thread
its process CPU time varied by about 10% (5.7-6.4 ms). One thread timed on the process CPU clock is
therefore the default; with more threads the clock is wall time.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.errors import SpecError
from search.workload import Workload

DEFAULT_THREADS = 1
INSTANCES = 2  # contexts per timed case (see the module note)


def clock_for(threads: int) -> str:
    return "cpu" if threads == 1 else "wall"


_CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


# ---- models -------------------------------------------------------------------------------
def export_for_timing(model: Any, recipe: Any, path: str | Path, *, exact: bool = False, seed: int = 0) -> Path:
    """Write `model` compressed by `recipe` as a GGUF file at `path` (see the module note on `exact`)."""
    import torch

    from search.compress import apply
    from search.hf_models import ByteTokenizer
    from search.runtimes.gguf_writer import write_gguf

    vocab = int(model.config.vocab_size)
    if vocab < 256:
        raise SpecError(f"timing in llama.cpp needs a vocabulary of at least 256 tokens, the model has {vocab}")
    compressed = apply(model, recipe, structure_only=not exact)
    if not exact:
        _fill_blocks(compressed, seed)
    # the tokenizer only names the ids: a byte vocabulary fits every model and costs nothing at run time
    with torch.no_grad():
        return write_gguf(compressed, ByteTokenizer(vocab), recipe, path, source="devicefit timing model")


def _fill_blocks(model: Any, seed: int) -> None:
    """Give every GGUF-packed module valid bytes: one random row quantized to its type, repeated."""
    import torch

    from search.compress.gguf_linear import GgufLinear

    gen = torch.Generator().manual_seed(seed)
    rows: dict[tuple[str, int], torch.Tensor] = {}
    for module in model.modules():
        if isinstance(module, GgufLinear):
            key = (module.ggml_type, module.in_features)
            if key not in rows:
                w = torch.randn(1, module.in_features, generator=gen) * module.in_features ** -0.5
                rows[key] = GgufLinear.from_weight(w, None, module.ggml_type).blocks
            module.blocks.copy_(rows[key].expand_as(module.blocks))
            if module.bias is not None:
                module.bias.zero_()


# ---- running ------------------------------------------------------------------------------
class GgufRun:
    """One GGUF loaded in llama.cpp for one workload; ``run()`` is one prefill or one decode step."""

    def __init__(self, path: str | Path, workload: Workload | str, threads: int = DEFAULT_THREADS, seed: int = 0):
        import numpy as np

        from search.runtimes.llamacpp import LlamaCppModel

        self.workload = Workload.parse(workload) if isinstance(workload, str) else workload
        if self.workload.batch != 1:
            raise SpecError(f"llama.cpp timing runs encode:N, prefill:N and decode:N with batch 1, not {self.workload}")
        n = self.workload.tokens
        self.model = LlamaCppModel(path, n_ctx=n + 1, n_threads=threads, embeddings=self.workload.kind == "encode")
        self.prompt = np.random.default_rng(seed).integers(1, 256, n).tolist()
        self.memory = self.model.api.llama_get_memory(self.model.ctx)
        if self.workload.kind == "decode":
            self.model._clear()
            self.model._decode(self.prompt, 0, "last")  # the context the new token attends to

    def run(self) -> None:
        n = self.workload.tokens
        if self.workload.kind in ("prefill", "encode"):
            self.model._clear()
            self.model._decode(self.prompt, 0, "last" if self.workload.kind == "prefill" else "all")
        else:
            self.model._decode([self.prompt[-1]], n, "last")
            self.model.api.llama_memory_seq_rm(self.memory, 0, n, -1)  # back to a context of exactly n

    def close(self) -> None:
        self.model.close()


@dataclass
class Timing:
    median_ms: float
    spread_ms: float  # interquartile range
    samples_ms: list[float]

    @classmethod
    def of(cls, samples: list[float]) -> Timing:
        q = statistics.quantiles(samples, n=4) if len(samples) >= 2 else [samples[0]] * 3
        return cls(statistics.median(samples), q[2] - q[0], list(samples))


def time_interleaved(cases: dict[Any, Callable[[], None]], rounds: int, *, clock: str = "cpu",
                     warmup: int = 1, prerun: bool = True) -> dict[Any, Timing]:
    """Each case `warmup` times, then per round each case once untimed (`prerun`: its weights back in the
    caches, as in a model serving token after token) and once timed."""
    now = _CLOCKS[clock]
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    samples: dict[Any, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for key, fn in cases.items():
            if prerun:
                fn()
            start = now()
            fn()
            samples[key].append((now() - start) * 1e3)
    return {k: Timing.of(v) for k, v in samples.items()}


def time_gguf(cases: dict[Any, tuple[str | Path, Workload | str]], rounds: int, *, threads: int = DEFAULT_THREADS,
              prerun: bool = True, warmup: int = 1, instances: int = INSTANCES,
              contexts: dict[Any, list[Timing]] | None = None) -> dict[Any, Timing]:
    """Median time of each (GGUF file, workload) case: every case on `instances` loaded contexts, all
    interleaved (time_interleaved), and per case the faster context's timing (`contexts`, when given,
    receives every context's timing per case)."""
    runs: dict[tuple[Any, int], GgufRun] = {}
    try:
        for key, (path, workload) in cases.items():
            for i in range(instances):
                runs[(key, i)] = GgufRun(path, workload, threads)
        timed = time_interleaved({k: r.run for k, r in runs.items()}, rounds, clock=clock_for(threads),
                                 warmup=warmup, prerun=prerun)
    finally:
        for run in runs.values():
            run.close()
    if contexts is not None:
        contexts.update({key: [timed[(key, i)] for i in range(instances)] for key in cases})
    return {key: min((timed[(key, i)] for i in range(instances)), key=lambda t: t.median_ms) for key in cases}


@contextmanager
def timing_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="devicefit-llamacpp-") as tmp:
        yield Path(tmp)


def machine_load() -> str:
    """The 1/5/15-minute load averages, as uptime prints them."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def measure_gguf(model: Any, recipe: Any, workload: Workload | str, *, threads: int = DEFAULT_THREADS,
                 rounds: int = 10, warmup: int = 1, exact: bool = True) -> Timing:
    """Median time of one workload unit of `model` compressed by `recipe`, run by llama.cpp."""
    with timing_dir() as tmp:
        path = export_for_timing(model, recipe, tmp / "model.gguf", exact=exact)
        return time_gguf({"model": (path, workload)}, rounds, threads=threads, warmup=warmup)["model"]
