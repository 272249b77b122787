"""Hand-written SELECTs for the few lookups every API call makes.

Building a query through the ORM costs about half a millisecond of CPU on a small server
before the database sees it; an MLflow ``get`` used to spend most of its time there (bench/
README.md has the measurements). The lookups on that path — token, model, the caller's
permissions, the MLflow shapes — run the SQL written here instead, still returning model
instances where callers expect them (``Model.from_db``, the ORM's own constructor for rows).

The SQL is plain enough for both SQLite and PostgreSQL; the tests run on both. Table and
column names come from the models' metadata, never from input; values are always parameters.
"""

import functools
from collections.abc import Callable, Iterable, Sequence

from django.db import connection
from django.db.models import Model


def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def quote(name: str) -> str:
    """A column name that is also an SQL keyword (``key``), quoted for this backend."""
    return connection.ops.quote_name(name)


def columns(model: type[Model], alias: str) -> str:
    """``alias.col, …`` for every concrete field, in the order ``instance()`` reads them."""
    return _columns(connection.vendor, model, alias)


@functools.cache
def _columns(vendor: str, model: type[Model], alias: str) -> str:
    return ", ".join(f"{alias}.{quote(f.column)}" for f in model._meta.concrete_fields)


def width(model: type[Model]) -> int:
    return len(model._meta.concrete_fields)


def instance(model: type[Model], row: Sequence, start: int = 0) -> Model:
    """The instance whose columns (as listed by ``columns()``) start at ``row[start]``."""
    fields = model._meta.concrete_fields
    values = list(row[start : start + len(fields)])
    for i, convert in _row_converters(model):
        values[i] = convert(values[i])
    return model.from_db(connection.alias, [f.attname for f in fields], values)


_COLUMN_CONVERTERS: dict[tuple, Callable] = {}
_ROW_CONVERTERS: dict[tuple, list[tuple[int, Callable]]] = {}


def converter(model: type[Model], field_name: str) -> Callable:
    """A function turning one column's raw value into what the ORM would return (SQLite
    returns datetimes as text, for one): the identity where the backend needs nothing.
    Computed once per backend, model and field."""
    key = (connection.vendor, model, field_name)
    if key not in _COLUMN_CONVERTERS:
        col = model._meta.get_field(field_name).get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        _COLUMN_CONVERTERS[key] = _chain(converters, col) if converters else _identity
    return _COLUMN_CONVERTERS[key]


def _row_converters(model: type[Model]) -> list[tuple[int, Callable]]:
    """(position, converter) of the columns of ``model`` that need converting."""
    key = (connection.vendor, model)
    if key not in _ROW_CONVERTERS:
        _ROW_CONVERTERS[key] = [
            (i, convert)
            for i, field in enumerate(model._meta.concrete_fields)
            if (convert := converter(model, field.name)) is not _identity
        ]
    return _ROW_CONVERTERS[key]


def _identity(value):
    return value


def _chain(converters: list, col) -> Callable:
    def convert(value):
        for converter in converters:
            value = converter(value, col, connection)
        return value

    return convert


def fetch(sql: str, params: Iterable = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()


def placeholders(values: Sequence) -> str:
    """``%s, %s, …`` for an IN list (callers never pass an empty one)."""
    return ", ".join(["%s"] * len(values))


def among(column: str, values: Sequence) -> tuple[str, list]:
    """``column IN (…)`` and its parameters. On PostgreSQL one array parameter (``= ANY``):
    the statement text stays the same whatever the number of values, so it stays prepared."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(values)]
    if not values:
        return "1 = 0", []
    return f"{column} IN ({placeholders(values)})", list(values)


def among_selected(column: str, subquery: str) -> str:
    """``column IN (subquery)``. On PostgreSQL ``= ANY(ARRAY(subquery))``: the subquery runs
    once and the column's index is used, where ``IN`` may make it hash a whole table."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(ARRAY({subquery}))"
    return f"{column} IN ({subquery})"


def not_among(column: str, values: Sequence) -> tuple[str, list]:
    """``column NOT IN (…)`` and its parameters (see ``among``)."""
    if connection.vendor == "postgresql":
        return f"NOT ({column} = ANY(%s))", [list(values)]
    if not values:
        return "1 = 1", []
    return f"{column} NOT IN ({placeholders(values)})", list(values)


def insert(objs: Sequence[Model]) -> None:
    """INSERT new instances of one model in one statement and set their primary keys: what
    ``bulk_create`` (or ``save()`` of a new row) does, without the ORM building the query.
    Fields are prepared the ORM's way (``pre_save`` fills ``auto_now`` dates, values are
    adapted for the backend). No signals are sent; the models written this way have none."""
    if not objs:
        return
    model = type(objs[0])
    pk = model._meta.pk
    fields = [f for f in model._meta.concrete_fields if f is not pk]
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    names = ", ".join(quote(f.column) for f in fields)
    batch = max(1, 10_000 // len(fields))  # well under both backends' parameter limits
    for start in range(0, len(objs), batch):
        chunk = objs[start : start + batch]
        values = []
        for obj in chunk:
            values += [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields]
        ids = fetch(
            f"INSERT INTO {table(model)} ({names}) "  # noqa: S608 (names from model metadata)
            f"VALUES {', '.join([row] * len(chunk))} RETURNING {quote(pk.column)}",
            values,
        )
        for obj, (new_id,) in zip(chunk, ids, strict=True):
            obj.pk = new_id
            obj._state.adding = False
            obj._state.db = connection.alias
