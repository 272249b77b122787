"""PostgreSQL's JIT is off for the registry's connections unless DATABASE_JIT=1 (the
measurement behind it: bench/README.md, "JIT")."""

import pytest
from django.db import connection

from registry_site.settings import _database

URL = "postgres://postgres@127.0.0.1:5432/registry"


def test_off_by_default(monkeypatch):
    monkeypatch.delenv("DATABASE_JIT", raising=False)
    assert _database(URL)["OPTIONS"]["options"] == "-c jit=off"


def test_on_when_asked(monkeypatch):
    monkeypatch.setenv("DATABASE_JIT", "1")
    assert "options" not in _database(URL)["OPTIONS"]


def test_sqlite_is_left_alone(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_JIT", raising=False)
    assert "options" not in _database(f"sqlite:///{tmp_path}/x.sqlite3")["OPTIONS"]


@pytest.mark.django_db
def test_the_connection_runs_without_jit():
    if connection.vendor != "postgresql":
        pytest.skip("JIT is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
