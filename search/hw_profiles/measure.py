"""Measure a torch model's latency on this machine: pinned threads, warm-up, repeated timing, median.

``runner(model, workload)`` returns a zero-argument function running one unit of
the workload (a forward pass; in decode one new token at a context of exactly N,
the KV cache cropped back after each step), so a benchmark can interleave the
repeats of many models; ``measure_latency`` times one model on its own.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from search.errors import SpecError
from search.workload import Workload

DEFAULT_THREADS = 1  # the host is shared: one pinned thread times far more stably than two contended ones


@dataclass
class Measurement:
    median_ms: float
    spread_ms: float  # interquartile range of the samples
    samples_ms: list[float] = field(default_factory=list)
    threads: int = DEFAULT_THREADS
    clock: str = "cpu"

    @classmethod
    def of(cls, samples_ms: list[float], threads: int, clock: str = "cpu") -> Measurement:
        ordered = sorted(samples_ms)
        q = statistics.quantiles(ordered, n=4) if len(ordered) >= 2 else [ordered[0]] * 3
        return cls(median_ms=statistics.median(ordered), spread_ms=q[2] - q[0], samples_ms=list(samples_ms),
                   threads=threads, clock=clock)


@contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _is_causal(model: Any) -> bool:
    return bool(getattr(getattr(model, "config", None), "is_decoder", False)) or hasattr(model, "lm_head")


def runner(model: Any, workload: Workload | str, seed: int = 0) -> Callable[[], None]:
    """One call of the returned function = one forward (encode, prefill) or one decoded token."""
    import torch

    if isinstance(workload, str):
        workload = Workload.parse(workload)
    vocab = int(getattr(model.config, "vocab_size", 256))
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (workload.batch, workload.tokens), generator=gen)
    causal = _is_causal(model)
    if workload.kind != "encode" and not causal:
        raise SpecError(f"workload {workload} needs a causal language model; use encode:N for an encoder")

    if workload.kind == "encode":
        def run() -> None:
            with torch.inference_mode():
                model(input_ids=ids)
        return run
    if workload.kind == "prefill":
        def run() -> None:
            with torch.inference_mode():
                model(input_ids=ids, use_cache=True, logits_to_keep=1)  # time to first token: last logits only
        return run
    with torch.inference_mode():
        cache = model(input_ids=ids, use_cache=True).past_key_values
    step = torch.randint(0, vocab, (workload.batch, 1), generator=gen)
    position = torch.full((workload.batch, 1), workload.tokens, dtype=torch.long)

    def run() -> None:
        with torch.inference_mode():
            model(input_ids=step, past_key_values=cache, position_ids=position, use_cache=True)
        extra = cache.get_seq_length() - workload.tokens
        if extra > 0:
            cache.crop(-extra)  # back to a context of exactly N for the next step
    run.cache = cache  # type: ignore[attr-defined]  # for inspection
    return run


CLOCKS = {"cpu": time.process_time_ns, "wall": time.perf_counter_ns}


def time_ms(fn: Callable[[], None], clock: str = "cpu") -> float:
    """Duration of fn() in ms. 'cpu' counts the process's CPU time: on a machine shared with other
    jobs a single-threaded run's CPU time is its latency on an idle machine, unaffected by being
    descheduled; 'wall' is elapsed time (the honest choice with several threads)."""
    now = CLOCKS[clock]
    start = now()
    fn()
    return (now() - start) / 1e6


def interleaved_medians(cases: dict, rounds: int, warmup: int = 2, clock: str = "cpu") -> dict:
    """Median ms of each case over interleaved rounds; in a round each case runs once untimed, then once timed.

    Interleaving spreads a burst of load from other jobs over every case alike; the untimed run
    right before each timed one brings the case's data back into the caches, as when a deployed model
    runs request after request (otherwise every case would be timed cold, evicted by the others).
    """
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    samples: dict = {k: [] for k in cases}
    for _ in range(rounds):
        for key, fn in cases.items():
            fn()
            samples[key].append(time_ms(fn, clock))
    return {k: statistics.median(v) for k, v in samples.items()}


def default_clock(threads: int) -> str:
    return "cpu" if threads == 1 else "wall"


def measure_latency(model: Any, workload: Workload | str, *, repeats: int = 20, warmup: int = 3,
                    threads: int = DEFAULT_THREADS, clock: str | None = None) -> Measurement:
    """Median latency (ms) of `workload` on `model` over `repeats` timed runs after `warmup` runs."""
    if repeats < 1 or warmup < 0:
        raise SpecError("repeats must be at least 1 and warmup at least 0")
    clock = clock or default_clock(threads)
    if clock not in CLOCKS:
        raise SpecError(f"unknown clock {clock!r}; use cpu or wall")
    with pinned_threads(threads):
        run = runner(model, workload)
        for _ in range(warmup):
            run()
        samples = [time_ms(run, clock) for _ in range(repeats)]
    return Measurement.of(samples, threads, clock)
