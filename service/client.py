"""The HTTP client of the service: submit a SearchSpec, read a search, cancel it.

Only the standard library talks HTTP here, so the CLI (search/cli/remote.py, which
shows the progress and the front) needs nothing beyond what a local search needs.
Errors are one-line SpecErrors: the service's refusal, or why it cannot be reached.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from search.errors import SpecError
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
