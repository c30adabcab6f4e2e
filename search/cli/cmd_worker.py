"""search-cli worker: start a Celery worker that evaluates candidates for searches.

The command validates its options, then replaces itself (exec) with
``python -m celery -A workers.celery_app worker ...``: the worker's parent
process starts clean, with no torch imported (torch in a prefork parent
deadlocks the children), and a SIGTERM/SIGKILL to this pid reaches Celery.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

from search.errors import SpecError

QUEUE_NAMES = ("general", "searches", "device")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "worker", help="run a Celery worker that evaluates candidates (distributed search)",
        description="Run a Celery worker on this machine. It evaluates the candidates of searches started with "
                    "`search-cli search --broker URL` or through the service. With --device it measures latency "
                    "on this machine for that device's searches, one candidate at a time.")
    p.add_argument("--broker", help="Redis URL (default: $DEVICEFIT_BROKER or redis://127.0.0.1:6379/0)")
    p.add_argument("--device", metavar="NAME",
                   help="take the latency-measurement tasks of this device (e.g. host, rpi5): run it on that device")
    p.add_argument("--queues", metavar="LIST",
                   help="comma-separated from general, searches, device (default: general,searches; "
                        "with --device: device)")
    p.add_argument("--concurrency", type=int, metavar="N",
                   help="worker processes (default: CPU cores; with --device 1, so measurements do not compete)")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads per process (default: cores / N)")
    p.add_argument("--preload", action="append", metavar="MODEL", default=[],
                   help="load this model in every worker process at start (repeatable), e.g. demo:minilm")
    p.add_argument("--name", help="Celery node name (default: devicefit-<queues>-<pid>@<host>)")
    p.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=run)


def celery_command(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The celery argv and environment this worker runs with; raises SpecError for bad options."""
    from search.models import resolve_ref
    from workers.queues import GENERAL, SEARCHES, device_queue

    broker = args.broker or os.environ.get("DEVICEFIT_BROKER") or "redis://127.0.0.1:6379/0"
    if not broker.startswith(("redis://", "rediss://")):
        raise SpecError(f"--broker {broker!r} is not a Redis URL: write redis://HOST:PORT/DB")
    names = [q.strip() for q in (args.queues or ("device" if args.device else "general,searches")).split(",")]
    unknown = [q for q in names if q not in QUEUE_NAMES]
    if unknown or not names:
        raise SpecError(f"--queues {args.queues!r}: choose from {', '.join(QUEUE_NAMES)}")
    if "device" in names and not args.device:
        raise SpecError("--queues device needs --device NAME (the device this worker measures on)")
    queues = [{"general": GENERAL, "searches": SEARCHES}.get(q) or device_queue(args.device) for q in names]
    concurrency = args.concurrency if args.concurrency is not None else (1 if args.device else os.cpu_count() or 1)
    if concurrency < 1 or (args.threads is not None and args.threads < 1):
        raise SpecError("--concurrency and --threads must be at least 1")
    for ref in args.preload:
        resolve_ref(ref)  # a bad model reference fails here, not in every worker process
    threads = args.threads or max(1, (os.cpu_count() or 1) // concurrency)
    role = args.device or "-".join(names)
    name = args.name or f"devicefit-{role}-{os.getpid()}@{socket.gethostname()}"
    env = dict(os.environ, DEVICEFIT_BROKER=broker, DEVICEFIT_CONCURRENCY=str(concurrency),
               DEVICEFIT_TORCH_THREADS=str(threads), DEVICEFIT_PRELOAD=",".join(args.preload),
               OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if args.device:
        env["DEVICEFIT_DEVICE"] = args.device
    # the worker imports workers/ and search/ from this checkout even when it is not pip-installed
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    argv = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "--pool", "prefork",
            "--concurrency", str(concurrency), "--queues", ",".join(queues), "--hostname", name,
            "--loglevel", args.loglevel, "--without-mingle"]
    return argv, env


def run(args: argparse.Namespace) -> int:
    argv, env = celery_command(args)
    print(f"starting Celery worker {argv[argv.index('--hostname') + 1]} on {env['DEVICEFIT_BROKER']} "
          f"(queues {argv[argv.index('--queues') + 1]}, {argv[argv.index('--concurrency') + 1]} process(es), "
          f"{env['DEVICEFIT_TORCH_THREADS']} torch thread(s) each)", file=sys.stderr, flush=True)
    os.execve(sys.executable, argv, env)
    return 0  # not reached
