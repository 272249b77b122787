"""Database connection health checks for a busy worker.

With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` before the first query of every request
on a persistent connection, so that a connection the database dropped (a restart, an idle
timeout) is replaced instead of failing the request. On a worker answering hundreds of API
calls a second that is one round trip in five. A connection that finished a request less
than ``RECENT`` seconds ago is taken as alive and not checked; one idle for longer is checked
as before. If a connection does die within that second, the request using it fails and Django
closes the connection after it (``close_if_unusable_or_obsolete``): the next request opens a
new one.
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
    request_started.connect(_skip_check_if_recent, dispatch_uid="registry-recent-connections")
    request_finished.connect(_mark_used, dispatch_uid="registry-mark-connections-used")
