"""A connection that served a request a moment ago is not health-checked again."""

import time

from django.db import connection

from registry_site import connections


def test_a_connection_used_a_moment_ago_skips_the_check(db):
    connection.ensure_connection()
    connection.health_check_done = False  # what close_old_connections leaves
    connections._mark_used()
    connections._skip_check_if_recent()
    assert connection.health_check_done is True


def test_a_connection_idle_for_longer_is_checked(db):
    connection.ensure_connection()
    connection.health_check_done = False
    connection.registry_last_request_end = time.monotonic() - 2 * connections.RECENT
    connections._skip_check_if_recent()
    assert connection.health_check_done is False
