"""Keyset ("seek") pagination: a page is the rows after (or before) the last row seen, in an
order that an index serves, so page 400 costs what page 1 costs; OFFSET would read and drop
every row before it.

The order is a list of ``(field, descending)`` keys whose last key is unique (a tie-breaker),
so that every row has one place. A cursor is the keys' values of a row, as an opaque
URL-safe string; a cursor that does not decode is ``None`` (the caller shows the first page).
"""

import base64
import binascii
import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

Keys = Sequence[tuple[str, bool]]  # (field name, descending)


def ordering(keys: Keys, *, reverse: bool = False) -> list[str]:
    """``order_by`` arguments for the keys (reversed: to read backwards from a cursor)."""
    return [f"{'-' if descending != reverse else ''}{name}" for name, descending in keys]


def encode(obj, keys: Keys) -> str:
    """The cursor of ``obj``: its values of the keys."""
    values = []
    for name, _ in keys:
        value = getattr(obj, name)
        values.append(value.isoformat() if isinstance(value, datetime.datetime) else value)
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, model, keys: Keys) -> list | None:
    """The values a cursor holds, each as its field's Python value; None when it is not a
    cursor of these keys."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(values, list) or len(values) != len(keys):
        return None
    decoded = []
    for (name, _), value in zip(keys, values, strict=True):
        if not isinstance(value, str | int) or isinstance(value, bool):
            return None
        try:
            decoded.append(model._meta.get_field(name).to_python(value))
        except ValidationError:
            return None
    if any(value is None for value in decoded):
        return None
    return decoded


def beyond(keys: Keys, values: list, *, reverse: bool = False) -> Q:
    """Rows after the row with these key values in the keys' order (before it: ``reverse``):
    (k1 > v1) OR (k1 = v1 AND k2 > v2) OR …, with ``<`` for descending keys, and the first
    key's bound (k1 >= v1) alone as well, which an index on the keys uses as its range."""
    condition = Q()
    equal = Q()
    for (name, descending), value in zip(keys, values, strict=True):
        after = "lt" if descending != reverse else "gt"
        condition |= equal & Q(**{f"{name}__{after}": value})
        equal &= Q(**{name: value})
    first, descending = keys[0]
    bound = Q(**{f"{first}__{'lte' if descending != reverse else 'gte'}": values[0]})
    return bound & condition


@dataclass
class Page:
    rows: list
    next_cursor: str | None  # the rows after this page, when there are any
    previous_cursor: str | None  # the rows before it, when there are any


def page_after(queryset: QuerySet, keys: Keys, size: int, *, after=None, before=None) -> Page:
    """The ``size`` rows after the cursor values ``after`` (or before ``before``; neither: the
    first rows), in the keys' order, in one query (one row more tells whether more follow)."""
    if before is not None:
        rows = list(
            queryset.filter(beyond(keys, before, reverse=True)).order_by(
                *ordering(keys, reverse=True)
            )[: size + 1]
        )
        more_before = len(rows) > size
        rows = rows[:size][::-1]
        return Page(
            rows,
            encode(rows[-1], keys) if rows else None,
            encode(rows[0], keys) if rows and more_before else None,
        )
    if after is not None:
        queryset = queryset.filter(beyond(keys, after))
    rows = list(queryset.order_by(*ordering(keys))[: size + 1])
    more_after = len(rows) > size
    rows = rows[:size]
    return Page(
        rows,
        encode(rows[-1], keys) if rows and more_after else None,
        encode(rows[0], keys) if rows and after is not None else None,
    )
