"""LocalExecutor: evaluate candidates in this process, or in a local pool of worker processes.

In-process mode (workers=1) runs each task when it is submitted: one trial at a
time, no start-up cost, the default for a laptop. Pool mode keeps several
trials in flight; workers are spawned (not forked, so no half-initialised torch
state is inherited), pin their torch threads, and load models on first use.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor

from search.executor import EvalResult, EvalTask

EvalFn = Callable[[EvalTask], EvalResult]


def _default_evaluate(task: EvalTask) -> EvalResult:
    from search.evaluation import evaluate_task

    return evaluate_task(task)


def _init_worker(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


class LocalExecutor:
    """Runs EvalTasks locally. workers=1: in this process; workers>1: a spawned process pool."""

    def __init__(self, workers: int = 1, threads: int | None = None, evaluate_fn: EvalFn | None = None):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.evaluate_fn = evaluate_fn or _default_evaluate
        cores = os.cpu_count() or 1
        self.threads = threads or max(1, cores // workers)
        self._pool: ProcessPoolExecutor | None = None
        if workers > 1:
            import multiprocessing

            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker, initargs=(self.threads,))

    @property
    def max_in_flight(self) -> int:
        return self.workers

    def submit(self, task: EvalTask) -> Future[EvalResult]:
        if self._pool is not None:
            return self._pool.submit(self.evaluate_fn, task)
        future: Future[EvalResult] = Future()
        try:
            future.set_result(self.evaluate_fn(task))
        except Exception as exc:  # noqa: BLE001 - the engine decides what a failed evaluation means
            future.set_exception(exc)
        return future

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
