"""DATABASE_CONN_HEALTH_CHECKS, and a persistent connection the database dropped between two
requests (PostgreSQL).

Requests go through Django's WSGI handler, not the test client, which leaves out the signal
handler that checks and closes connections between requests; the connection is dropped from a
second connection with pg_terminate_backend.
"""

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection, connections  # noqa: F401 (skipif condition)
from django.test import RequestFactory

from registry_site import health_checks as recent
from registry_site.settings import _database


def postgres_only(test):
    marks = [
        pytest.mark.postgres_only,
        pytest.mark.django_db(transaction=True),  # autocommit between requests, as when serving
        pytest.mark.skipif("connection.vendor != 'postgresql'", reason="persistent connections"),
    ]
    for mark in marks:
        test = mark(test)
    return test


@pytest.fixture
def healthz():
    """GET /healthz through the WSGI handler: its status (503 when its query failed)."""
    # The receivers in a server's order: Django's close_old_connections, then health_checks.py's.
    # The test client disconnects Django's around each request and connects it again, last.
    recent.disconnect()
    recent.connect()
    handler = WSGIHandler()

    def get() -> int:
        statuses = []
        environ = RequestFactory().get("/healthz").environ
        response = handler(environ, lambda status, headers: statuses.append(status))
        response.close()  # request_finished, as a server sends it
        return int(statuses[0].split()[0])

    return get


def drop_from_the_database() -> int:
    """Terminate the backend of the default connection; its pid."""
    pid = connection.connection.info.backend_pid
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])  # waits till gone
            assert cursor.fetchone() == (True,)
    finally:
        other.close()
    return pid


def test_health_checks_are_on_by_default_and_off_when_asked(monkeypatch):
    url = "postgres://registry@db.example.org:5432/registry"
    monkeypatch.delenv("DATABASE_CONN_HEALTH_CHECKS", raising=False)
    assert _database(url)["CONN_HEALTH_CHECKS"] is True
    monkeypatch.setenv("DATABASE_CONN_HEALTH_CHECKS", "0")
    assert _database(url)["CONN_HEALTH_CHECKS"] is False


@postgres_only
def test_a_connection_dropped_while_idle_is_replaced_before_the_next_request(healthz, monkeypatch):
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True
    monkeypatch.setattr(recent, "RECENT", 0.0)  # every connection counts as idle
    assert healthz() == 200
    dropped = drop_from_the_database()
    assert healthz() == 200
    assert connection.connection.info.backend_pid != dropped


@postgres_only
def test_a_connection_dropped_within_a_second_of_its_last_request_fails_one_request(
    healthz, monkeypatch
):
    # The price of not checking a connection that has just served a request (health_checks.py):
    # the next request on it fails, and the one after gets a new connection.
    monkeypatch.setattr(recent, "RECENT", 60.0)  # "just now", however slow the machine
    assert healthz() == 200
    dropped = drop_from_the_database()
    assert healthz() == 503
    assert healthz() == 200
    assert connection.connection.info.backend_pid != dropped
