"""Celery workers for devicefit: evaluate candidates (and whole searches) on many machines.

- ``celery_app``  the Celery app (Redis broker and result backend by URL)
- ``queues``      which queue a task goes to (general vs a device's measurement queue)
- ``ledger``      Redis bookkeeping that makes evaluations idempotent and crash-safe
- ``run_once``    the worker side of that: run an evaluation at most once to completion
- ``tasks``       the Celery tasks: evaluate one candidate, run a whole search
- ``search_lease`` one live engine per search: a lease per running search, a registry of unfinished ones
- ``watchdog``    in every search runner: re-sends a search whose runner died, to resume its study
- ``executor``    CeleryExecutor: the engine's Executor protocol on top of Celery
- ``worker_init`` per-process set-up after the fork (torch threads, model preloading)

Nothing here imports torch at import time: a Celery prefork parent that has run
torch deadlocks its children.
"""
