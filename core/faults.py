"""Fault points: where the fault suite (tests/faults/live/) kills a worker for real.

Inert unless ``REGISTRY_FAULT_HOOKS=1`` (settings.REGISTRY_FAULT_HOOKS, allowed only with
``REGISTRY_DEV=1``), which only the suite sets. Then ``point(name)`` reads the file
``fault-point`` in the data dir; when the file names this point, the file is removed (one shot:
the client's retry goes through) and the process sends itself SIGKILL, as the kernel's
out-of-memory killer or an operator's ``kill -9`` would, at a moment a signal from outside
cannot aim at: after a file is stored and before the transaction that records it commits.
Off, a point costs one settings lookup.
"""

import os
import signal
from pathlib import Path

from django.conf import settings

ARMED_FILE = "fault-point"


def point(name: str) -> None:
    if not settings.REGISTRY_FAULT_HOOKS:
        return
    armed = Path(settings.DATA_DIR) / ARMED_FILE
    try:
        if armed.read_text().strip() != name:
            return
        armed.unlink()  # only one process fires: the others find the file gone
    except FileNotFoundError:
        return
    os.kill(os.getpid(), signal.SIGKILL)
