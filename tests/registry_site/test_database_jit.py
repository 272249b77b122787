"""PostgreSQL's JIT is off for the registry's connections unless DATABASE_JIT=1 (the
measurement behind it: bench/README.md, "JIT"), and prepared statements are planned for each
run's values (plan_cache_mode=force_custom_plan) unless DATABASE_PLAN_CACHE_MODE says
otherwise."""

import pytest
from django.db import connection

from registry_site.settings import _database

URL = "postgres://postgres@127.0.0.1:5432/registry"


def test_off_by_default(monkeypatch):
    monkeypatch.delenv("DATABASE_JIT", raising=False)
    monkeypatch.delenv("DATABASE_PLAN_CACHE_MODE", raising=False)
    assert _database(URL)["OPTIONS"]["options"] == (
        "-c jit=off -c plan_cache_mode=force_custom_plan"
    )


def test_on_when_asked(monkeypatch):
    monkeypatch.setenv("DATABASE_JIT", "1")
    monkeypatch.delenv("DATABASE_PLAN_CACHE_MODE", raising=False)
    assert _database(URL)["OPTIONS"]["options"] == "-c plan_cache_mode=force_custom_plan"


def test_postgres_default_plan_cache_when_asked(monkeypatch):
    monkeypatch.setenv("DATABASE_JIT", "1")
    monkeypatch.setenv("DATABASE_PLAN_CACHE_MODE", "auto")
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
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone()[0] == "force_custom_plan"
