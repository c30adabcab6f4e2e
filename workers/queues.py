"""Queue names: which worker may take which task.

Predicted-latency evaluation runs anywhere, so it goes to the general queue.
A candidate whose latency is *measured* must run on the device it is measured
for, so it goes to that device's queue, consumed only by workers started with
``search-cli worker --device NAME`` on that device.
"""

from __future__ import annotations

import re

from search.errors import SpecError
from search.executor import EvalTask

GENERAL = "devicefit.general"
SEARCHES = "devicefit.searches"  # whole searches (the engine loop), see tasks.run_search_task
_DEVICE_PREFIX = "devicefit.device."
_DEVICE_NAME = re.compile(r"[A-Za-z0-9][\w.-]*")


def device_queue(device: str) -> str:
    """The measurement queue of a device (``host``, ``rpi5``, ...)."""
    if not _DEVICE_NAME.fullmatch(device or ""):
        raise SpecError(f"device name {device!r} must be letters, digits, '-', '_' or '.' (e.g. rpi5 or host)")
    return _DEVICE_PREFIX + device


def needs_device(task: EvalTask) -> bool:
    """Whether the task measures latency, so it must run on the target device."""
    return task.stage == "measure" or task.spec.measure


def queue_for(task: EvalTask) -> str:
    return device_queue(task.spec.device) if needs_device(task) else GENERAL
