"""`search-cli --server URL ...`: submit the search to a running service and follow it.

The same SearchSpec the local search would run is POSTed to the service; the
progress bar and the result table are the local ones, fed from GET /search/{id}.
Ctrl-C cancels the remote search. Only the standard library talks HTTP here, so
the CLI needs nothing beyond what a local search needs.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from types import SimpleNamespace
from typing import Any

from search.errors import DeviceFitError, InfeasibleError, SpecError
from search.spec import SearchSpec

FINISHED = ("done", "failed", "cancelled")


class ServiceClient:
    def __init__(self, server: str, token: str | None = None, timeout_s: float = 30.0):
        if not server.startswith(("http://", "https://")):
            raise SpecError(f"--server {server!r} must be an http:// or https:// URL")
        self.server = server.rstrip("/")
        self.token = token if token is not None else os.environ.get("DEVICEFIT_API_TOKEN")
        self.timeout_s = timeout_s

    def request(self, method: str, path: str, body: dict | None = None) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token and method != "GET":
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.server + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise SpecError(f"the service refused it ({exc.code}): {_detail(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SpecError(f"cannot reach the service at {self.server}: {reason}") from None

    def submit(self, spec: SearchSpec) -> dict[str, Any]:
        if spec.storage or spec.study_name:
            raise SpecError("--storage and --study are chosen by the service; leave them out with --server")
        body = spec.model_dump(mode="json", exclude={"storage", "study_name"})
        return self.request("POST", "/search", body)

    def status(self, job_id: str) -> dict[str, Any]:
        return self.request("GET", f"/search/{job_id}")

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.request("DELETE", f"/search/{job_id}")


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("detail", exc.reason))
    except (ValueError, AttributeError):
        return str(exc.reason)


def run_remote(spec: SearchSpec, server: str, *, as_json: bool = False, poll_s: float = 1.0,
               bar_factory: Any = None) -> int:
    """Submit, follow with a progress bar, print the front as the local search does. Returns the exit code."""
    from search.cli.front_table import front_table

    client = ServiceClient(server)
    accepted = client.submit(spec)
    job_id = accepted["id"]
    print(f"submitted search {job_id} to {client.server} (page: {client.server}{accepted['links']['page']})",
          file=sys.stderr)
    detail: dict[str, Any] = accepted
    try:
        with bar_factory(spec) as bar:
            while True:
                detail = client.status(job_id)
                p = detail["progress"]
                bar.update(SimpleNamespace(done=p["completed"], feasible=p["feasible"], front_size=len(detail["front"]),
                                           full_evaluations=p["full_evaluations"]))
                if detail["status"] in FINISHED:
                    break
                time.sleep(poll_s)
    except KeyboardInterrupt:
        client.cancel(job_id)
        print(f"cancelled search {job_id} on the service", file=sys.stderr)
        raise
    if detail["status"] == "failed":
        raise DeviceFitError(f"search {job_id} failed on the service: {detail.get('error') or 'no reason given'}")
    if detail["status"] == "cancelled":
        raise DeviceFitError(f"search {job_id} was cancelled on the service")
    front = detail["front"]
    if not front:
        raise InfeasibleError(f"no candidate met the budget in {detail['progress']['completed']} trials "
                              f"(search {job_id}); relax the budget or search longer")
    if as_json:
        print(json.dumps({"id": job_id, "study": detail["spec"]["study_name"], "metric": detail["metric"],
                          "front": front, "trials": detail["progress"]["completed"]}))
        return 0
    better = "higher" if detail["higher_is_better"] else "lower"
    budget = ", ".join(f"{k.removeprefix('max_')} <= {v}" for k, v in detail["budget"].items() if v) or "none"
    print(f"Pareto front: {len(front)} candidates for {detail['model']} on {detail['device']} "
          f"({detail['workload']}), budget {budget}; {detail['metric']} {better} is better")
    print(front_table(front, detail["metric"]))
    p = detail["progress"]
    print(f"{p['completed']} trials: {p['full_evaluations']} full evaluations, {p['infeasible']} over budget")
    print(f"on the service: {client.server}/searches/{job_id}    download one: "
          f"{client.server}/search/{job_id}/candidates/0/download")
    return 0
