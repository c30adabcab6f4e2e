"""Service load and soak: concurrent searches under polling clients, then many searches in sequence.

What it runs (all on this machine): a private redis-server, one `search-cli worker` (2 evaluation
processes and its search-runner threads, at nice 19) and `search-cli serve` (SQLite), as
bench/service_latency.py does. Then:
- load: `--searches` clients each POST a small search at the same moment, while `--pollers`
  clients poll (each every 0.5 s, the web page's rate) half `GET /` and half `GET /search/{id}`
  of those searches, until every search finished. Recorded: whether all completed, p50/p95/p99 of
  both GETs (client side), and 5xx answers (any non-2xx counts as an error).
- soak: `--soak` small searches one after the other; the service's RSS and open file descriptors
  and the Redis key count are read before and after (task results expire after 7 days, ledger
  entries after theirs; nothing should grow per search beyond that).

Usage: .venv/bin/python bench/service_load.py [--searches 8] [--pollers 50] [--soak 100]
Writes docs/service_load.json and the figures block of docs/service.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from service_latency import Stack, http_json, percentile, timed_get, wait_until  # noqa: E402 - after the path

DOC = ROOT / "docs" / "service.md"
BEGIN, END = "<!-- service_load:begin -->", "<!-- service_load:end -->"
SEARCH = {"model": "demo:minilm", "device": "rpi5", "budget": {"max_latency": "200ms"}, "trials": 4,
          "calib_samples": 2, "seq_len": 32}
FINISHED = ("done", "failed", "cancelled")


async def poll_until(urls: list[str], stop: threading.Event, pause: float) -> dict[str, dict]:
    """One keep-alive client per url, each GET every `pause` s until `stop`; latencies and errors per path kind."""
    results: dict[str, dict] = {}

    async def one(url: str) -> None:
        parts = urlsplit(url)
        kind = "GET /" if parts.path == "/" else "GET /search/{id}"
        bucket = results.setdefault(kind, {"ms": [], "errors": 0, "5xx": 0})
        request = f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        await asyncio.sleep(random.uniform(0, pause))  # the pollers are not in step
        try:
            while not stop.is_set():
                ms, status = await timed_get(reader, writer, request)
                bucket["ms"].append(ms)
                bucket["errors"] += status >= 400
                bucket["5xx"] += status >= 500
                await asyncio.sleep(pause)
        finally:
            writer.close()

    await asyncio.gather(*(one(u) for u in urls))
    return results


def process_facts(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return {"rss_mb": round(rss_kb / 1024, 1), "open_files": len(os.listdir(f"/proc/{pid}/fd"))}


def redis_keys(url: str) -> dict:
    """Keys in Redis, and those without an expiry (the ones that could grow without bound)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(count=1000))
        forever = [k.decode() for k in keys if client.ttl(k) == -1]
        return {"redis_keys": len(keys), "redis_keys_without_expiry": len(forever),
                "without_expiry": sorted({k.split(":")[0] + ":" + k.split(":")[1] if ":" in k else k
                                          for k in forever})[:12]}
    finally:
        client.close()


def load_phase(stack: Stack, searches: int, pollers: int, timeout_s: float) -> dict:
    started = time.monotonic()
    ids: list[str] = [""] * searches

    def submit(i: int) -> None:  # one client per search, all at once
        ids[i] = http_json(stack.url + "/search", {**SEARCH, "seed": i})["id"]

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(searches)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    urls = [stack.url + "/" if i % 2 == 0 else f"{stack.url}/search/{ids[i // 2 % searches]}" for i in range(pollers)]
    stop = threading.Event()
    holder: dict = {}
    poller = threading.Thread(target=lambda: holder.update(asyncio.run(poll_until(urls, stop, 0.5))))
    poller.start()
    statuses: dict[str, str] = {}
    try:
        while time.monotonic() - started < timeout_s:
            statuses = {i: http_json(f"{stack.url}/search/{i}")["status"] for i in ids}
            if all(s in FINISHED for s in statuses.values()):
                break
            time.sleep(1)
    finally:
        stop.set()
        poller.join()
    out = {"searches": searches, "pollers": pollers, "seconds": round(time.monotonic() - started, 1),
           "statuses": sorted(statuses.values()), "all_done": all(s == "done" for s in statuses.values())}
    for kind, bucket in sorted(holder.items()):
        ms = bucket["ms"]
        out[kind] = {"requests": len(ms), "p50_ms": round(percentile(ms, 50), 1), "p95_ms": round(percentile(ms, 95), 1),
                     "p99_ms": round(percentile(ms, 99), 1), "max_ms": round(max(ms), 1),
                     "errors": bucket["errors"], "5xx": bucket["5xx"]}
    return out


def soak_phase(stack: Stack, n: int) -> dict:
    service_pid = stack.procs[-1].pid
    before = {**process_facts(service_pid), **redis_keys(stack.broker)}
    started, failed = time.monotonic(), 0
    for i in range(n):
        job = http_json(stack.url + "/search", {**SEARCH, "seed": 1000 + i})["id"]
        wait_until(lambda job=job: http_json(f"{stack.url}/search/{job}")["status"] in FINISHED, 600, f"search {i}")
        failed += http_json(f"{stack.url}/search/{job}")["status"] != "done"
    after = {**process_facts(service_pid), **redis_keys(stack.broker)}
    return {"searches": n, "failed": failed, "seconds": round(time.monotonic() - started, 1),
            "before": before, "after": after}


def write_doc(result: dict) -> None:
    load, soak = result["load"], result["soak"]
    lines = [f"{result['host']}; {load['searches']} searches ({SEARCH['trials']} trials each) from "
             f"{load['searches']} clients at once, {load['pollers']} pollers each every 0.5 s; one worker with 2 "
             f"evaluation processes at nice 19.", "", f"Command: `{result['command']}`; `uptime` before the load "
             f"phase: {result['uptime']['before_load']}; after it: {result['uptime']['after_load']}; after the "
             f"soak: {result['uptime']['after_soak']}.", "",
             f"- load: all done: **{load['all_done']}** ({', '.join(load['statuses'])}) in {load['seconds']} s", "",
             "| GET | requests | p50 ms | p95 ms | p99 ms | max ms | 5xx | other errors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for kind in ("GET /", "GET /search/{id}"):
        row = load.get(kind)
        if row:
            lines.append(f"| `{kind}` | {row['requests']} | {row['p50_ms']} | {row['p95_ms']} | **{row['p99_ms']}** | "
                         f"{row['max_ms']} | {row['5xx']} | {row['errors'] - row['5xx']} |")
    if soak is None:
        lines += ["", "- soak: not run (`--soak 0`)"]
    else:
        b, a = soak["before"], soak["after"]
        lines += ["", f"- soak: {soak['searches']} searches in sequence in {soak['seconds']} s, {soak['failed']} failed; "
                  f"service RSS {b['rss_mb']} → {a['rss_mb']} MB, open files {b['open_files']} → "
                  f"{a['open_files']}, Redis keys {b['redis_keys']} → {a['redis_keys']}, of which without an "
                  f"expiry {b['redis_keys_without_expiry']} → {a['redis_keys_without_expiry']} "
                  f"({', '.join(a['without_expiry']) or 'none'})"]
    text = DOC.read_text()
    block = BEGIN + "\n" + "\n".join(lines) + "\n" + END
    if BEGIN in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n## Load and soak\n\n`bench/service_load.py` (see its docstring).\n\n" + block + "\n"
    DOC.write_text(text)


def _uptime() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally: stop the subprocesses
    random.seed(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searches", type=int, default=8)
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--soak", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds the load phase may take")
    parser.add_argument("--no-doc", action="store_true", help="print only; do not rewrite docs/service.md")
    args = parser.parse_args()
    nice = os.nice(0)
    command = " ".join([*(["nice", "-n", str(nice)] if nice else []), ".venv/bin/python", "bench/service_load.py",
                        *sys.argv[1:]])
    uptime = {"before_load": _uptime()}
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="devicefit-load-") as tmp:
        stack = Stack(Path(tmp))
        try:
            load_before = os.getloadavg()[0]
            load = load_phase(stack, args.searches, args.pollers, args.timeout)
            uptime["after_load"] = _uptime()
            print(json.dumps(load, indent=1), flush=True)
            soak = soak_phase(stack, args.soak) if args.soak else None
            uptime["after_soak"] = _uptime()
            print(json.dumps(soak, indent=1), flush=True)
        finally:
            stack.stop()
    result = {"host": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                      f"{started}", "command": command, "uptime": uptime,
              "load_average": f"{load_before:.1f}-{os.getloadavg()[0]:.1f}", "load": load, "soak": soak}
    (ROOT / "docs" / "service_load.json").write_text(json.dumps(result, indent=1) + "\n")
    if not args.no_doc:
        write_doc(result)


if __name__ == "__main__":
    main()
