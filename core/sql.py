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
from typing import NamedTuple

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Field, Model


def _db():
    """The default connection itself. ``django.db.connection`` is a proxy that looks it up
    again on every attribute (about a microsecond each): the writes below use this once."""
    return connections[DEFAULT_DB_ALIAS]


def table(model: type[Model]) -> str:
    return _quoted(connection.vendor, model._meta.db_table)


def quote(name: str) -> str:
    """A column name that is also an SQL keyword (``key``), quoted for this backend."""
    return _quoted(connection.vendor, name)


@functools.cache
def _quoted(vendor: str, name: str) -> str:
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


def execute(sql: str, params: Iterable = ()) -> int:
    """Run a statement that returns no rows; the number of rows it changed."""
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.rowcount


def placeholders(values: Sequence) -> str:
    """``%s, %s, …`` for an IN list (callers never pass an empty one)."""
    return ", ".join(["%s"] * len(values))


def among(column: str, values: Sequence) -> tuple[str, list]:
    """``column IN (…)`` and its parameters. On PostgreSQL one array parameter (``= ANY``):
    the statement text stays the same whatever the number of values, so it stays prepared."""
    if connection.vendor == "postgresql":
        array, param = _array(values)
        return f"{column} = ANY({array})", [param]
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
        array, param = _array(values)
        return f"NOT ({column} = ANY({array}))", [param]
    if not values:
        return "1 = 1", []
    return f"{column} NOT IN ({placeholders(values)})", list(values)


def _array(values: Sequence) -> tuple[str, object]:
    """A PostgreSQL array parameter. Integers (the primary keys every caller passes) travel as
    the array's text, ``{1,2,3}``: psycopg's list adapter inspects and converts each element in
    Python, ~0.1 ms for 100 ids here, ten times what joining them costs."""
    if all(type(v) is int for v in values):
        return "CAST(%s AS bigint[])", "{" + ",".join(map(str, values)) + "}"
    return "%s", list(values)


def insert(objs: Sequence[Model], *, along: tuple[str, list] | None = None) -> None:
    """INSERT new instances of one model in one statement and set their primary keys: what
    ``bulk_create`` (or ``save()`` of a new row) does, without the ORM building the query.
    Fields are prepared the ORM's way (``pre_save`` fills ``auto_now`` dates, values are
    adapted for the backend). No signals are sent; the models written this way have none.

    ``along``: an UPDATE (SQL and parameters) that belongs with the INSERT. On PostgreSQL it
    travels in the same statement, as a WITH clause; elsewhere it runs just before."""
    if not objs:
        return
    db = _db()
    prefix, prefix_params = "", []
    if along is not None:
        if db.vendor == "postgresql":
            prefix, prefix_params = f"WITH along AS ({along[0]}) ", list(along[1])
        else:
            execute(*along)
    model = type(objs[0])
    fields, into, returning = _insert_plan(db.vendor, model)
    batch = max(1, 10_000 // len(fields))  # well under both backends' parameter limits
    for start in range(0, len(objs), batch):
        chunk = objs[start : start + batch]
        values = []
        for obj in chunk:
            values += [f.get_db_prep_save(f.pre_save(obj, add=True), db) for f in fields]
        ids = fetch(
            f"{prefix}{into} VALUES {_rows(len(fields), len(chunk))}{returning}",
            prefix_params + values,
        )
        prefix, prefix_params = "", []  # with the first chunk only
        for obj, (new_id,) in zip(chunk, ids, strict=True):
            _inserted(obj, new_id, db)


@functools.cache
def _insert_plan(vendor: str, model: type[Model]) -> tuple[list[Field], str, str]:
    """The fields an INSERT writes (all but the primary key), ``INSERT INTO t (…)`` and
    ``RETURNING pk``: the same for every insert of ``model``."""
    pk = model._meta.pk
    fields = [f for f in model._meta.concrete_fields if f is not pk]
    names = ", ".join(_quoted(vendor, f.column) for f in fields)
    into = f"INSERT INTO {_quoted(vendor, model._meta.db_table)} ({names})"
    return fields, into, f" RETURNING {_quoted(vendor, pk.column)}"


@functools.lru_cache(maxsize=256)
def _rows(width: int, count: int) -> str:
    """``(%s, %s), (%s, %s)`` for ``count`` rows of ``width`` values."""
    return ", ".join(["(" + ", ".join(["%s"] * width) + ")"] * count)


def _inserted(obj: Model, pk, db) -> None:
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = db.alias


def insert_numbered(
    obj: Model,
    field: str,
    counter: Model,
    counter_field: str,
    *,
    children: Sequence[Model] = (),
    along: tuple[str, list] | None = None,
    bump: tuple[str, ...] = (),
    taken_into: str | None = None,
) -> tuple | None:
    """INSERT ``obj`` with ``field`` set to the value of ``counter_field`` in ``counter``'s row,
    moving that column on by one: how the versions of a model get their numbers. ``bump``:
    more columns of ``counter``'s row moved on by one in the same UPDATE, ``taken_into``: a
    column of it set to the number taken (a model's version count and latest number). The UPDATE
    keeps ``counter``'s row locked until the transaction ends, so numbers are taken one after
    the other, and a rolled-back insert gives its number back.

    ``children``: new rows of other models with a foreign key to ``obj``'s model (a version's
    tags, say), written with it and pointed at it; their own primary keys are not read back.
    ``along``: one more UPDATE … RETURNING (SQL, parameters) that belongs with the insert and
    runs after it (the audit chain's head, say).

    On PostgreSQL all of it is one statement: the counter's row is locked for one round trip
    instead of one per kind of row. Elsewhere it is one statement each. Returns None when
    ``counter``'s row is gone: neither ``obj`` nor its children are written, but ``along`` may
    have run, so the caller rolls the transaction back. Otherwise the row ``along`` returned
    (empty without one, or when it changed no row)."""
    db = _db()
    kinds: dict[type[Model], list[Model]] = {}
    for child in children:
        kinds.setdefault(type(child), []).append(child)
    plan = _numbered_plan(
        db.vendor,
        type(obj),
        field,
        type(counter),
        counter_field,
        tuple(kinds),
        along[0] if along is not None else None,
        tuple(bump),
        taken_into,
    )
    if db.vendor != "postgresql":
        rows = fetch(plan.take, [counter.pk])
        if not rows:
            return None
        setattr(obj, field, rows[0][0])
        insert([obj])
        for (_, link, _), rows_of_kind in zip(plan.children, kinds.values(), strict=True):
            for child in rows_of_kind:
                setattr(child, link.name, obj)
            insert(rows_of_kind)
        along_rows = fetch(*along) if along is not None else []
        return tuple(along_rows[0]) if along_rows else ()
    values = [counter.pk]
    values += [
        f.get_db_prep_save(f.pre_save(obj, add=True), db)
        for f in plan.fields
        if f is not plan.numbered
    ]
    for (_, _, fields), rows_of_kind in zip(plan.children, kinds.values(), strict=True):
        for f in fields:  # one array per column, unnested into rows by the statement
            values.append(
                [f.get_db_prep_save(f.pre_save(child, add=True), db) for child in rows_of_kind]
            )
    if along is not None:
        values += list(along[1])
    rows = fetch(plan.statement, values)
    if not rows:
        return None
    pk, number, *along_row = rows[0]
    setattr(obj, field, number)
    _inserted(obj, pk, db)
    for child in children:
        child._state.adding = False
        child._state.db = db.alias
    return tuple(along_row) if along_row and along_row[0] is not None else ()


class _NumberedPlan(NamedTuple):
    fields: list[Field]  # what the INSERT of the numbered row writes
    numbered: Field
    take: str  # the UPDATE taking a number
    children: list[tuple[type[Model], Field, list[Field]]]  # model, link to parent, the rest
    statement: str  # PostgreSQL: all of it in one


@functools.cache
def _numbered_plan(
    vendor: str,
    model: type[Model],
    field: str,
    counter_model: type[Model],
    counter_field: str,
    child_models: tuple[type[Model], ...],
    along: str | None,
    bump: tuple[str, ...],
    taken_into: str | None,
) -> _NumberedPlan:
    db = _db()
    fields, into, returning = _insert_plan(vendor, model)
    numbered = model._meta.get_field(field)

    def column(name: str) -> str:
        return _quoted(vendor, counter_model._meta.get_field(name).column)

    count = column(counter_field)
    # (Every right-hand side reads the row as it was before the UPDATE.)
    sets = [f"{count} = {count} + 1", *(f"{column(b)} = {column(b)} + 1" for b in bump)]
    if taken_into is not None:
        sets.append(f"{column(taken_into)} = {count}")
    take = (
        f"UPDATE {_quoted(vendor, counter_model._meta.db_table)} "  # noqa: S608 (metadata)
        f"SET {', '.join(sets)} "
        f"WHERE {_quoted(vendor, counter_model._meta.pk.column)} = %s RETURNING {count} - 1"
    )
    # INSERT … SELECT: a parameter takes its column's type only by an explicit cast there.
    selected = ", ".join(
        "taken.value" if f is numbered else f"CAST(%s AS {f.cast_db_type(db)})" for f in fields
    )
    parts = [
        f"taken (value) AS ({take})",
        f"parent AS ({into} SELECT {selected} FROM taken{returning}, "  # noqa: S608
        f"{_quoted(vendor, numbered.column)})",
    ]
    children = []
    parent_pk = _quoted(vendor, model._meta.pk.column)
    for i, child_model in enumerate(child_models):
        child_fields, child_into, _ = _insert_plan(vendor, child_model)
        (link,) = [f for f in child_fields if f.is_relation and f.related_model is model]
        rest = [f for f in child_fields if f is not link]
        children.append((child_model, link, rest))
        names = [f"c{j}" for j in range(len(rest))]
        arrays = ", ".join(f"CAST(%s AS {f.cast_db_type(db)}[])" for f in rest)
        columns = ", ".join(
            f"parent.{parent_pk}" if f is link else f"u.c{rest.index(f)}" for f in child_fields
        )
        parts.append(
            f"child{i} AS ({child_into} SELECT {columns} "  # noqa: S608 (names from metadata)
            f"FROM parent, UNNEST({arrays}) AS u({', '.join(names)}))"
        )
    if along is None:
        statement = f"WITH {', '.join(parts)} SELECT * FROM parent"  # noqa: S608
    else:  # (LEFT JOIN: the insert's row comes back even when ``along`` changed none)
        parts.append(f"along AS ({along})")
        statement = (
            f"WITH {', '.join(parts)} "  # noqa: S608
            "SELECT parent.*, along.* FROM parent LEFT JOIN along ON TRUE"
        )
    return _NumberedPlan(fields, numbered, take, children, statement)
