"""The devicefit Celery app: Redis as broker and result backend, chosen by URL.

``celery -A workers.celery_app worker`` (or ``search-cli worker``) serves it and
``celery -A workers.celery_app flower`` monitors it. The URL comes from the
environment variable DEVICEFIT_BROKER (default redis://127.0.0.1:6379/0);
``make_app(url)`` builds an app for another URL (the executor's --broker).

Reliability settings, and why:
- acks_late + reject_on_worker_lost: a message is acknowledged only after its
  task finished, and a task whose process died is put back on the queue, so a
  SIGKILLed worker loses no candidate (the ledger makes the re-run idempotent).
- prefetch multiplier 1: a busy worker holds no queued candidates hostage.
- visibility timeout: a message unacknowledged this long (its whole worker
  died) is handed out again. It must exceed the longest trial; the executor's
  heartbeat watchdog (ledger.py) recovers crashed trials much sooner.
"""

from __future__ import annotations

import os

from celery import Celery

from workers.queues import GENERAL

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
DEFAULT_VISIBILITY_TIMEOUT_S = 3600


def broker_url() -> str:
    return os.environ.get("DEVICEFIT_BROKER") or DEFAULT_BROKER


def visibility_timeout_s() -> float:
    return float(os.environ.get("DEVICEFIT_VISIBILITY_TIMEOUT") or DEFAULT_VISIBILITY_TIMEOUT_S)


def make_app(url: str | None = None) -> Celery:
    url = url or broker_url()
    app = Celery("devicefit", broker=url, backend=url, include=["workers.tasks"])
    transport = {"visibility_timeout": visibility_timeout_s(),
                 "socket_connect_timeout": 5, "socket_keepalive": True, "health_check_interval": 10}
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=GENERAL,
        task_create_missing_queues=True,
        broker_transport_options=transport,
        result_backend_transport_options={"retry_policy": {"timeout": 10.0}},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker outlives a Redis restart
        # a trial running while Redis restarts keeps going and stores its result when Redis is back
        # (the ledger retries); cancelling it would only throw the work away
        worker_cancel_long_running_tasks_on_connection_loss=False,
        result_expires=7 * 24 * 3600,
        task_track_started=True,
        worker_send_task_events=True,  # Flower shows tasks live
        task_send_sent_event=True,
        # loading torch and a model in worker_process_init takes longer than Celery's 4 s default
        worker_proc_alive_timeout=120.0,
    )
    return app


app = make_app()

import workers.worker_init  # noqa: E402,F401 - registers the per-process set-up signals
