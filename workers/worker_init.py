"""Per-process set-up of a worker: torch threads and model preloading, after the fork.

Celery's prefork pool forks children from the worker's parent process. A
parent that has run a torch forward pass carries initialised OpenMP/intra-op
thread pools into the forked children, which then deadlock on their first
forward pass. So the parent never touches torch; each child, in
worker_process_init (i.e. after the fork), sets its thread count and loads
the models named in DEVICEFIT_PRELOAD into search.evaluation's per-process cache.

Environment (set by ``search-cli worker``):
- DEVICEFIT_TORCH_THREADS  intra-op threads per child (default: cores / concurrency)
- DEVICEFIT_PRELOAD        comma-separated model refs to load at start
- DEVICEFIT_CONCURRENCY    child processes of this worker (for the default above)
- DEVICEFIT_WORKER_NICE    CPU niceness each child adds to itself (evaluations yield to the service)
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

from celery.signals import celeryd_after_setup, worker_init, worker_process_init, worker_ready

log = logging.getLogger(__name__)


def torch_threads() -> int:
    explicit = os.environ.get("DEVICEFIT_TORCH_THREADS")
    if explicit:
        return max(1, int(explicit))
    concurrency = max(1, int(os.environ.get("DEVICEFIT_CONCURRENCY") or 1))
    return max(1, (os.cpu_count() or 1) // concurrency)


def preload_refs() -> list[str]:
    return [r.strip() for r in (os.environ.get("DEVICEFIT_PRELOAD") or "").split(",") if r.strip()]


@celeryd_after_setup.connect
def _quiet_known_warning(**_: object) -> None:
    # Celery warns on every broker connection loss that the default of
    # worker_cancel_long_running_tasks_on_connection_loss will change; celery_app sets it deliberately
    warnings.filterwarnings("ignore", message=r"(?s).*worker_cancel_long_running_tasks_on_connection_loss")


@worker_init.connect
def _check_parent(**_: object) -> None:
    if "torch" in sys.modules:
        log.warning("torch is imported in the Celery parent process; running it there before the fork "
                    "deadlocks the prefork children (start workers with `search-cli worker`)")


@worker_process_init.connect
def _setup_child(**_: object) -> None:
    nice = int(os.environ.get("DEVICEFIT_WORKER_NICE") or 0)
    if nice > 0:
        os.nice(nice)  # only the evaluation children: the parent and the search runner keep their priority
    threads = torch_threads()
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    refs = preload_refs()
    if refs:
        from search.evaluation import loaded_model

        for ref in refs:
            try:
                loaded_model(ref)
            except Exception as exc:  # noqa: BLE001 - a bad preload must not crash-loop the pool
                log.error("could not preload %s: %s", ref, exc)
    log.info("worker process %d ready: %d torch thread(s), preloaded %s", os.getpid(), threads, refs or "nothing")


@worker_ready.connect
def _start_watchdog(sender: object = None, **_: object) -> None:
    """A search-runner worker watches for searches whose runner died (workers/watchdog.py)."""
    if os.environ.get("DEVICEFIT_SEARCH_RUNNER") == "1" and sender is not None:
        from workers.search_lease import lease_ttl_s
        from workers.watchdog import Watchdog

        Watchdog(sender.app).start()
        log.info("search watchdog started (lease TTL %.0f s)", lease_ttl_s())
