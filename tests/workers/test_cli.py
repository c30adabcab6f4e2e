"""search-cli worker / search --broker: options, one-line refusals, and the clean worker parent."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from search.cli.main import build_parser
from search.errors import DeviceFitError
from tests.workers.conftest import ROOT


def worker_commands(*argv: str) -> list[tuple[list[str], dict[str, str]]]:
    from search.cli.cmd_worker import worker_commands as commands

    return commands(build_parser().parse_args(["worker", *argv]))


def worker_command(*argv: str) -> tuple[list[str], dict[str, str]]:
    """The evaluation worker's command (the first one)."""
    return worker_commands(*argv)[0]


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_default_worker_evaluates_in_processes_and_runs_searches_on_threads(monkeypatch):
    monkeypatch.delenv("DEVICEFIT_BROKER", raising=False)
    (argv, env), (runner, runner_env) = worker_commands("--name", "w@h")
    assert argv[1:6] == ["-m", "celery", "-A", "workers.celery_app", "worker"]
    assert option(argv, "--queues") == "devicefit.general"
    assert option(argv, "--pool") == "prefork"
    # searches never take an evaluation process: their own thread pool, their own node
    assert option(runner, "--queues") == "devicefit.searches" and option(runner, "--pool") == "threads"
    assert option(runner, "--concurrency") == "8" and option(runner, "--hostname") == "searches-w@h"
    assert runner_env["DEVICEFIT_SEARCH_RUNNER"] == "1" and "DEVICEFIT_SEARCH_RUNNER" not in env
    assert env["DEVICEFIT_BROKER"] == "redis://127.0.0.1:6379/0"
    cores = int(option(argv, "--concurrency"))
    assert int(env["DEVICEFIT_TORCH_THREADS"]) == max(1, (__import__("os").cpu_count() or 1) // cores)


def test_device_worker_measures_alone_with_all_cores():
    argv, env = worker_command("--device", "rpi5", "--broker", "redis://pi-server:6379/2", "--preload", "demo:minilm")
    assert option(argv, "--queues") == "devicefit.device.rpi5"
    assert option(argv, "--concurrency") == "1"
    assert env["DEVICEFIT_TORCH_THREADS"] == str(__import__("os").cpu_count() or 1)
    assert env["DEVICEFIT_BROKER"] == "redis://pi-server:6379/2" and env["DEVICEFIT_PRELOAD"] == "demo:minilm"
    argv, _ = worker_command("--device", "host", "--queues", "device,general", "--concurrency", "2", "--threads", "3")
    assert option(argv, "--queues") == "devicefit.device.host,devicefit.general"
    assert option(argv, "--concurrency") == "2"
    [(argv, _)] = worker_commands("--queues", "searches", "--search-threads", "3", "--name", "r@h")
    assert option(argv, "--pool") == "threads" and option(argv, "--concurrency") == "3"
    assert option(argv, "--hostname") == "r@h"


def test_evaluations_yield_the_cpu_unless_they_measure():
    _, env = worker_command("--name", "w@h")
    assert env["DEVICEFIT_WORKER_NICE"] == "10"
    _, env = worker_command("--device", "rpi5")
    assert env["DEVICEFIT_WORKER_NICE"] == "0"  # a timing must not be slowed by other work
    _, env = worker_command("--nice", "3")
    assert env["DEVICEFIT_WORKER_NICE"] == "3"


def test_a_worker_child_lowers_its_own_priority(monkeypatch):
    script = ("import os; os.environ['DEVICEFIT_WORKER_NICE'] = '5'; before = os.nice(0); "
              "from workers.worker_init import _setup_child; _setup_child(); print(os.nice(0) - before)")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "5"


@pytest.mark.parametrize("argv, message", [
    (["--nice", "20"], "choose from 0"),
    (["--queues", "gpu"], "choose from general, searches, device"),
    (["--queues", "device"], "needs --device"),
    (["--device", "my pi"], "device name"),
    (["--broker", "amqp://x"], "not a Redis URL"),
    (["--concurrency", "0"], "at least 1"),
    (["--search-threads", "0"], "at least 1"),
    (["--preload", "demo:nothing"], "unknown demo model"),
])
def test_bad_worker_options_are_one_line(argv, message):
    with pytest.raises(DeviceFitError, match=message):
        worker_command(*argv)


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "search.cli.main", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("broker, message", [("amqp://x", "not a Redis URL"),
                                             ("redis://127.0.0.1:1/0", "cannot reach the broker")])
def test_search_with_bad_broker_exits_2_with_one_line(broker, message, tmp_path):
    done = run_cli("search", "--broker", broker, "--trials", "2", "--storage", f"sqlite:///{tmp_path}/s.db")
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_worker_modules_do_not_import_torch():
    """The worker's parent imports these before forking its pool: torch there can deadlock the children."""
    code = ("import sys, workers.celery_app, workers.tasks, workers.executor, workers.worker_init; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_search_cli_has_broker_flag():
    args = build_parser().parse_args(["search", "--broker", "redis://h:6379/0"])
    assert isinstance(args, argparse.Namespace) and args.broker == "redis://h:6379/0"
