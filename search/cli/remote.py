"""`search-cli --server URL ...`: submit the search to a running service and follow it.

The same SearchSpec the local search would run is POSTed to the service
(service/client.py); the progress bar and the result table are the local ones,
fed from GET /search/{id}. Ctrl-C cancels the remote search.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from search.errors import DeviceFitError, InfeasibleError
from search.progress import Progress
from search.spec import SearchSpec
from service.client import FINISHED, ServiceClient


def run_remote(spec: SearchSpec, server: str, *, as_json: bool = False, poll_s: float = 1.0,
               bar_factory: Any = None) -> int:
    """Submit, follow with a progress bar, print the front as the local search does. Returns the exit code."""
    from search.cli.front_table import front_heading, front_table

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
                bar.update(Progress(completed=p["completed"], total=p["total"], feasible=p["feasible"],
                                    full_evaluations=p["full_evaluations"], front_size=len(detail["front"])))
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
    print(front_heading(len(front), detail["spec"], detail["metric"], detail["higher_is_better"]))
    print(front_table(front, detail["metric"]))
    p = detail["progress"]
    print(f"{p['completed']} trials: {p['full_evaluations']} full evaluations, {p['infeasible']} over budget")
    print(f"on the service: {client.server}/searches/{job_id}    download one: "
          f"{client.server}/search/{job_id}/candidates/0/download")
    return 0
