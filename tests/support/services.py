"""Private test services: free ports, a redis-server and a PostgreSQL cluster in temporary directories,
and subprocess lifetimes. Tests and benchmarks start their own; nothing depends on a system service.

A service that cannot start raises ServiceUnavailable with what to do (the fixtures turn it into a
test failure, never a skip): a clone that lacks the binaries learns to run scripts/test-env.sh.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

INSTALL_HINT = "run scripts/test-env.sh (it installs the Debian packages redis-server and postgresql)"


class ServiceUnavailable(RuntimeError):
    """A test service could not be started; the message says why and what to do."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout_s: float, what: str, proc: subprocess.Popen | None = None,
               log: Path | None = None) -> None:
    """Poll check() until it is true; raise ServiceUnavailable (with the log's tail) on timeout or exit."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
    raise ServiceUnavailable(f"{what} did not come up in {timeout_s:.0f} s\n{tail}")


def stop_process(proc: subprocess.Popen | None, *, grace_s: float = 20.0, group: bool = False) -> None:
    """SIGTERM (the process group with group=True), then SIGKILL after grace_s; always reaps it."""
    if proc is None or proc.poll() is not None:
        return
    send = (lambda sig: os.killpg(proc.pid, sig)) if group else proc.send_signal
    try:
        send(signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait(timeout=30)
    except ProcessLookupError:
        proc.wait(timeout=30)


def find_binary(name: str) -> str:
    """A server binary on PATH or in Debian's versioned PostgreSQL directories."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)),
                                       None)
    if found is None:
        raise ServiceUnavailable(f"{name} is not installed: {INSTALL_HINT}")
    return found


class RedisServer:
    """A redis-server on a free port, no persistence; restart() loses everything, like a crash."""

    def __init__(self, workdir: Path):
        self.dir, self.port, self.proc = Path(workdir), free_port(), None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = find_binary("redis-server")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        try:
            wait_until(answers, 15, f"redis-server on port {self.port}", self.proc, self.dir / "redis.log")
        finally:
            client.close()
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self, down_s: float = 1.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


class PostgresServer:
    """A PostgreSQL cluster (initdb + pg_ctl) in a temporary directory, on a free TCP port, trust auth.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user (which the
    Debian package creates) and its commands run through runuser.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="devicefit-pg-"))  # not under pytest's root-only tmp
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as: list[str] = []

    def _run(self, *argv: str, timeout_s: float = 120) -> None:
        done = subprocess.run([*self._as, *argv], capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0:
            raise ServiceUnavailable(f"{os.path.basename(argv[0])} failed ({done.returncode}): "
                                     f"{(done.stderr or done.stdout).strip()[-1500:]}")

    def start(self) -> PostgresServer:
        initdb, pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
        if os.geteuid() == 0:
            import pwd

            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceUnavailable(f"running as root and there is no 'postgres' user: {INSTALL_HINT}") from None
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run(pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._run(find_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout_s=60)
            except ServiceUnavailable:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
