"""The model page's grid of versions: one sort at a time, read a page at a time by seeking
from the last row shown (keyset pagination: ``?after=`` / ``?before=`` cursors), so the
4,000th page of a 100,000-version model costs what the first one does.

Every order ends with the version number, which is unique within a model, so a cursor (the
sort value and the number of a row) names one place in the order even where many versions
share a value. A metric sort reads from the metric side (index ``metric_name_split_value_idx``:
only as many rows as a page needs) and puts versions without that metric last, newest first.
"""

import base64
import binascii
import datetime
import json
from dataclasses import dataclass

from django.core.exceptions import BadRequest
from django.db import connection
from django.db.models import Q, QuerySet

from core import sql
from models_app.diff import MetricKey
from models_app.models import Metric, ModelVersion, RegisteredModel

PAGE_SIZE = 25
SORT_FIELDS = ("number", "created_at", "status")


@dataclass(frozen=True)
class VersionSort:
    value: str  # as in the URL: "-number", "status", "metric:accuracy@test", "-metric:loss"
    field: str  # "number", "created_at", "status" or "metric"
    descending: bool
    metric: MetricKey | None = None


def parse_sort(value: str) -> VersionSort | None:
    """``[-]number|created_at|status`` or ``[-]metric:<name>[@<split>]``; None if malformed."""
    descending = value.startswith("-")
    name = value.removeprefix("-")
    if name in SORT_FIELDS:
        return VersionSort(value, name, descending)
    if name.startswith("metric:"):
        metric, _, split = name.removeprefix("metric:").partition("@")
        if metric:
            return VersionSort(value, "metric", descending, (metric, split))
    return None


@dataclass(frozen=True)
class GridPage:
    versions: list[ModelVersion]
    next_cursor: str  # "" on the last page
    previous_cursor: str  # "" on the first page

    @property
    def has_other_pages(self) -> bool:
        return bool(self.next_cursor or self.previous_cursor)


# ---------------------------------------------------------------------------------------------
# Cursors: the sort value and the number of a row, as URL-safe base64 of a JSON list.


def _encode(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _cursor(version: ModelVersion, sort: VersionSort) -> str:
    if sort.field == "number":
        return _encode([version.number])
    if sort.field == "created_at":
        return _encode([version.created_at.isoformat(), version.number])
    if sort.field == "status":
        return _encode([version.status, version.number])
    return _encode([version.sort_value, version.number])


def _decode(token: str, sort: VersionSort) -> list:
    """The cursor's values, checked against the sort; BadRequest (400) for anything else."""
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("Not a page cursor from this grid.") from None
    width = 1 if sort.field == "number" else 2
    if not isinstance(values, list) or len(values) != width:
        raise BadRequest("Not a page cursor for this sort.")
    number = values[-1]
    if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number < 2**31:
        raise BadRequest("Not a page cursor for this sort.")
    if sort.field == "created_at":
        try:
            values[0] = datetime.datetime.fromisoformat(values[0])
        except (TypeError, ValueError):
            raise BadRequest("Not a page cursor for this sort.") from None
        if values[0].tzinfo is None:
            raise BadRequest("Not a page cursor for this sort.")
    elif sort.field == "status":
        if values[0] not in ModelVersion.Status.values:
            raise BadRequest("Not a page cursor for this sort.")
    elif sort.field == "metric":
        value = values[0]
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise BadRequest("Not a page cursor for this sort.")
    return values


# ---------------------------------------------------------------------------------------------
# Pages


def grid_page(
    model: RegisteredModel,
    sort: VersionSort,
    *,
    after: str = "",
    before: str = "",
    some_lack_metric: bool = True,
) -> GridPage:
    """One page of the model's versions in ``sort`` order: from the start, after the row
    ``after`` names, or ending before the row ``before`` names. Versions come with
    ``created_by`` and ``metrics`` loaded; a metric sort also sets ``sort_value``.
    ``some_lack_metric=False`` (every version has the sort's metric, as the model's
    ModelMetricKey count says) skips looking for versions without it."""
    backward = bool(before) and not after
    cursor = _decode(after or before, sort) if (after or before) else None
    if sort.field == "metric":
        ids = _metric_sorted_ids(
            model, sort, cursor, backward, PAGE_SIZE + 1, some_lack_metric=some_lack_metric
        )
        more = len(ids) > PAGE_SIZE
        ids = ids[:PAGE_SIZE]
        by_id = model.versions.for_grid().in_bulk([pk for pk, _ in ids])
        rows = []
        for pk, value in ids:
            by_id[pk].sort_value = value
            rows.append(by_id[pk])
    else:
        rows = list(_field_sorted(model.versions.for_grid(), sort, cursor, backward))
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
    if backward:
        rows.reverse()
    if not rows:
        return GridPage([], "", "")
    # Going forward there is a page before this one when we came from a cursor, and one after
    # when a row more was found; going backward, the other way round.
    has_next = bool(cursor) if backward else more
    has_previous = more if backward else bool(cursor)
    return GridPage(
        rows,
        _cursor(rows[-1], sort) if has_next else "",
        _cursor(rows[0], sort) if has_previous else "",
    )


def _field_sorted(versions: QuerySet, sort: VersionSort, cursor: list | None, backward: bool):
    """Sorted by number, date or status, the number breaking ties (newest first)."""
    keys = [] if sort.field == "number" else [(sort.field, sort.descending)]
    keys.append(("number", sort.descending if sort.field == "number" else True))
    if backward:
        keys = [(field, not descending) for field, descending in keys]
    if cursor is not None:
        versions = versions.filter(_after(keys, cursor))
    order = [f"-{field}" if descending else field for field, descending in keys]
    return versions.order_by(*order)[: PAGE_SIZE + 1]


def _after(keys: list[tuple[str, bool]], values: list) -> Q:
    """Rows strictly after ``values`` in the order ``keys`` ((field, descending), ...): the
    first field bounded on its own too, so the index range starts at the cursor."""
    (first, first_desc), rest = keys[0], keys[1:]
    strict = Q(**{f"{first}__{'lt' if first_desc else 'gt'}": values[0]})
    if not rest:
        return strict
    bound = Q(**{f"{first}__{'lte' if first_desc else 'gte'}": values[0]})
    return bound & (strict | (Q(**{first: values[0]}) & _after(rest, values[1:])))


def _metric_sorted_ids(
    model: RegisteredModel,
    sort: VersionSort,
    cursor: list | None,
    backward: bool,
    limit: int,
    *,
    some_lack_metric: bool = True,
) -> list[tuple[int, float | None]]:
    query, args = metric_page_sql(
        model, sort, cursor, backward, limit, some_lack_metric=some_lack_metric
    )
    with connection.cursor() as c:
        c.execute(query, args)
        return [(pk, value) for pk, value in c.fetchall()]


def metric_page_sql(
    model: RegisteredModel,
    sort: VersionSort,
    cursor: list | None,
    backward: bool,
    limit: int,
    *,
    some_lack_metric: bool = True,
) -> tuple[str, list]:
    """The SQL (and its parameters) of a page in a metric's order: (version id, value) of
    the versions with the metric by value (the number breaking ties, newest first), then
    the versions without it, newest first. One query: the versions with the
    metric, read from the metric's index, and those without it, read only when the page is
    not full yet. Each part is ordered and limited on its own; UNION ALL appends them in
    order (PostgreSQL's Append and SQLite's compound SELECT run their parts one after the
    other) and the outer LIMIT stops before the second part when the first fills the page.
    Backward (``before``), everything is read in reverse.

    The part without the metric checks every version of the model that the page reaches for
    the metric (an anti-join, newest first). On the last page of a model whose versions all
    have it, that is every version: 100,000 index probes, 170 ms. ``some_lack_metric=False``
    leaves that part out."""
    name, split = sort.metric
    # Table names from the models' metadata, values as parameters (as in core/sql.py).
    metric, version = sql.table(Metric), sql.table(ModelVersion)
    # Going forward: with-metric rows, then without. Backward: the reverse of both.
    value_desc = sort.descending != backward
    number_desc = not backward
    value_op = "<" if value_desc else ">"
    number_op = "<" if number_desc else ">"
    with_metric_cond, with_metric_args = "", []
    without_cond, without_args = "", []
    read_with, read_without = True, some_lack_metric
    if cursor is not None:
        value, number = cursor
        if value is None:  # the cursor is among the versions without the metric
            read_with = backward
            read_without = True  # (the cursor came from one: read on from it)
            without_cond, without_args = f" AND v.number {number_op} %s", [number]
        else:
            read_without = read_without and not backward
            with_metric_cond = (
                f" AND m.value {value_op}= %s"
                f" AND (m.value {value_op} %s OR v.number {number_op} %s)"
            )
            with_metric_args = [value, value, number]
    with_sql = (
        f"SELECT v.id, m.value FROM {metric} m INNER JOIN {version} v ON v.id = m.version_id"  # noqa: S608
        f" WHERE v.model_id = %s AND m.name = %s AND m.split = %s{with_metric_cond}"
        f" ORDER BY m.value {'DESC' if value_desc else 'ASC'},"
        f" v.number {'DESC' if number_desc else 'ASC'} LIMIT %s"
    )
    with_args = [model.pk, name, split, *with_metric_args, limit]
    without_sql = (
        f"SELECT v.id, CAST(NULL AS REAL) FROM {version} v WHERE v.model_id = %s{without_cond}"  # noqa: S608
        f" AND NOT EXISTS (SELECT 1 FROM {metric} m"
        f" WHERE m.version_id = v.id AND m.name = %s AND m.split = %s)"
        f" ORDER BY v.number {'DESC' if number_desc else 'ASC'} LIMIT %s"
    )
    without_args = [model.pk, *without_args, name, split, limit]
    if backward:
        parts = [(read_without, without_sql, without_args), (read_with, with_sql, with_args)]
    else:
        parts = [(read_with, with_sql, with_args), (read_without, without_sql, without_args)]
    selects = [(f"SELECT * FROM ({part}) AS part{i}", args)  # noqa: S608
               for i, (read, part, args) in enumerate(parts) if read]  # fmt: skip
    query = " UNION ALL ".join(select for select, _ in selects) + " LIMIT %s"
    return query, [a for _, part_args in selects for a in part_args] + [limit]
