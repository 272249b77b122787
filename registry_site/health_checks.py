"""Database connection health checks for a busy worker.

With ``CONN_HEALTH_CHECKS`` (``DATABASE_CONN_HEALTH_CHECKS``, on by default) Django sends
``SELECT 1`` before the first query of every request on a persistent connection, so that a
connection the database dropped (a restart, an idle timeout) is replaced instead of failing
the request. A connection that finished a request less than ``RECENT`` seconds ago is taken as
alive and not checked; one idle for longer is checked as before. If a connection does die
within that second, the request using it fails and Django closes the connection after it
(``close_if_unusable_or_obsolete``): the next request opens a new one.

Kept because it was measured to pay (bench/health_checks.py, bench/README.md): on the loaded
2-core CI machine Django's check on every request added 0.10-0.27 ms to an MLflow get-model
call of 1.9-3.5 ms (six runs), and with this skip the call took as long as with checks off.
It relies on Django's ``health_check_done`` flag; pyproject.toml pins Django's minor release.
"""

import time

from django.core.signals import request_finished, request_started
from django.db import connections

RECENT = 1.0  # seconds


def _mark_used(**kwargs) -> None:
    now = time.monotonic()
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None:
            conn.registry_last_request_end = now


def _skip_check_if_recent(**kwargs) -> None:
    # Runs after Django's close_old_connections (connected first), which re-arms the check.
    now = time.monotonic()
    for conn in connections.all(initialized_only=True):
        last = getattr(conn, "registry_last_request_end", None)
        if conn.connection is not None and last is not None and now - last < RECENT:
            conn.health_check_done = True


def connect() -> None:
    request_started.connect(_skip_check_if_recent, dispatch_uid=_SKIP)
    request_finished.connect(_mark_used, dispatch_uid=_MARK)


def disconnect() -> None:
    """Back to Django's check before every request (bench/health_checks.py compares them)."""
    request_started.disconnect(dispatch_uid=_SKIP)
    request_finished.disconnect(dispatch_uid=_MARK)


_SKIP = "registry-recent-connections"
_MARK = "registry-mark-connections-used"
