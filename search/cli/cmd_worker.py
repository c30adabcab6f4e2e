"""search-cli worker: start the Celery workers that evaluate candidates and run whole searches.

Two kinds of work, two kinds of process, so a running search never takes an evaluation slot:
- evaluations (queues general / a device's): a prefork pool of --concurrency processes, torch in each;
- whole searches (queue searches): the engine loop, which mostly waits for evaluations, on a pool of
  --search-threads threads in one light process of its own.
With both (the default) this command supervises the two Celery processes: a signal to it reaches both,
and when one exits the other is stopped. With only one kind it replaces itself (exec) with that
Celery process. Either way the parent that forks the evaluation pool never imports torch (torch in a
prefork parent deadlocks the children).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys

from search.errors import SpecError

QUEUE_NAMES = ("general", "searches", "device")
DEFAULT_SEARCH_THREADS = 8
# evaluations are batch work: on a machine shared with the service (or a desktop) they yield the CPU,
# so pages and the search runners' bookkeeping stay responsive; a measuring worker keeps full priority
DEFAULT_EVALUATION_NICE = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "worker", help="run a Celery worker that evaluates candidates (distributed search)",
        description="Run a Celery worker on this machine. It evaluates the candidates of searches started with "
                    "`search-cli search --broker URL` or through the service, and runs the service's searches "
                    "on threads of their own (they never take an evaluation process). With --device it measures "
                    "latency on this machine for that device's searches, one candidate at a time.")
    p.add_argument("--broker", help="Redis URL (default: $DEVICEFIT_BROKER or redis://127.0.0.1:6379/0)")
    p.add_argument("--device", metavar="NAME",
                   help="take the latency-measurement tasks of this device (e.g. host, rpi5): run it on that device")
    p.add_argument("--queues", metavar="LIST",
                   help="comma-separated from general, searches, device (default: general,searches; "
                        "with --device: device)")
    p.add_argument("--concurrency", type=int, metavar="N",
                   help="evaluation processes (default: CPU cores; with --device 1, so measurements do not compete)")
    p.add_argument("--search-threads", type=int, metavar="N", default=DEFAULT_SEARCH_THREADS,
                   help=f"searches run at once on this machine (threads; default {DEFAULT_SEARCH_THREADS})")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads per process (default: cores / N)")
    p.add_argument("--nice", type=int, metavar="N",
                   help=f"CPU niceness of the evaluation processes, 0-19 (default {DEFAULT_EVALUATION_NICE}: "
                        "they yield to the service on a shared machine; with --device 0, so timings are not "
                        "slowed by other work)")
    p.add_argument("--preload", action="append", metavar="MODEL", default=[],
                   help="load this model in every worker process at start (repeatable), e.g. demo:minilm")
    p.add_argument("--name", help="Celery node name (default: devicefit-<queues>-<pid>@<host>); the search "
                                  "runner is named searches-<name>")
    p.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=run)


def worker_commands(args: argparse.Namespace) -> list[tuple[list[str], dict[str, str]]]:
    """The celery (argv, environment) pairs this worker runs: evaluations first, then the search runner.

    Raises SpecError for bad options.
    """
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
    concurrency = args.concurrency if args.concurrency is not None else (1 if args.device else os.cpu_count() or 1)
    if concurrency < 1 or (args.threads is not None and args.threads < 1) or args.search_threads < 1:
        raise SpecError("--concurrency, --search-threads and --threads must be at least 1")
    nice = getattr(args, "nice", None)
    nice = (0 if args.device else DEFAULT_EVALUATION_NICE) if nice is None else nice
    if not 0 <= nice <= 19:
        raise SpecError(f"--nice {nice}: choose from 0 (normal priority) to 19 (lowest)")
    for ref in args.preload:
        resolve_ref(ref)  # a bad model reference fails here, not in every worker process
    threads = args.threads or max(1, (os.cpu_count() or 1) // concurrency)
    role = args.device or "-".join(names)
    name = args.name or f"devicefit-{role}-{os.getpid()}@{socket.gethostname()}"
    env = dict(os.environ, DEVICEFIT_BROKER=broker, DEVICEFIT_CONCURRENCY=str(concurrency),
               DEVICEFIT_TORCH_THREADS=str(threads), DEVICEFIT_PRELOAD=",".join(args.preload),
               OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), DEVICEFIT_WORKER_NICE=str(nice))
    if args.device:
        env["DEVICEFIT_DEVICE"] = args.device
    # the worker imports workers/ and search/ from this checkout even when it is not pip-installed
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    base = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "--loglevel", args.loglevel,
            "--without-mingle"]
    commands = []
    evaluation_queues = [GENERAL if q == "general" else device_queue(args.device) for q in names if q != "searches"]
    if evaluation_queues:
        commands.append(([*base, "--pool", "prefork", "--concurrency", str(concurrency),
                          "--queues", ",".join(evaluation_queues), "--hostname", name], env))
    if "searches" in names:
        runner = dict(env, DEVICEFIT_SEARCH_RUNNER="1")
        runner_name = name if not evaluation_queues else f"searches-{name}"
        commands.append(([*base, "--pool", "threads", "--concurrency", str(args.search_threads),
                          "--queues", SEARCHES, "--hostname", runner_name], runner))
    return commands


def run(args: argparse.Namespace) -> int:
    commands = worker_commands(args)
    for argv, env in commands:
        print(f"starting Celery worker {_opt(argv, '--hostname')} on {env['DEVICEFIT_BROKER']} "
              f"(queues {_opt(argv, '--queues')}, {_opt(argv, '--pool')} pool of {_opt(argv, '--concurrency')}"
              f", {env['DEVICEFIT_TORCH_THREADS']} torch thread(s) each)", file=sys.stderr, flush=True)
    if len(commands) == 1:
        argv, env = commands[0]
        os.execve(sys.executable, argv, env)
    return supervise(commands)


def supervise(commands: list[tuple[list[str], dict[str, str]]]) -> int:
    """Run the Celery processes side by side; forward SIGTERM/SIGINT; when one exits, stop the rest."""
    import ctypes
    import time

    def die_with_parent() -> None:  # a SIGKILLed supervisor must not leave workers behind
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    procs = [subprocess.Popen(argv, env=env, preexec_fn=die_with_parent) for argv, env in commands]
    stopping = []

    def forward(signum, _frame) -> None:
        stopping.append(signum)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while all(p.poll() is None for p in procs):
        time.sleep(0.5)
    if not stopping:
        forward(signal.SIGTERM, None)
    codes = [p.wait() for p in procs]
    return next((c for c in codes if c), 0)


def _opt(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]
