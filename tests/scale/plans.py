"""Reading PostgreSQL's plans in tests (see conftest.py for the data they run on)."""

import re

import pytest
from django.db import connection
from django.db.models import Model, QuerySet


def explain(query: QuerySet | str, params: list | tuple | None = None, *, analyze=False) -> str:
    """The plan PostgreSQL chooses for a queryset or an SQL statement, as text. ``analyze``
    runs the query too and adds the real row counts and times."""
    options = "ANALYZE, BUFFERS" if analyze else "COSTS"
    if isinstance(query, QuerySet):
        sql, params = query.query.sql_with_params()
    else:
        sql = query
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN ({options}) {sql}", params or ())
        return "\n".join(row[0] for row in cursor.fetchall())


def _table(table: type[Model] | str) -> str:
    return table if isinstance(table, str) else table._meta.db_table


def seq_scans(plan: str) -> list[str]:
    """The tables the plan reads with a sequential scan (parallel ones included)."""
    return re.findall(r"Seq Scan on (\S+)", plan)


def assert_no_seq_scan(plan: str, table: type[Model] | str) -> None:
    """Fails, showing the plan, when it scans the whole of ``table`` (a model or a name)."""
    name = _table(table)
    if name in seq_scans(plan):
        pytest.fail(f"sequential scan of {name} in the plan:\n{plan}", pytrace=False)
