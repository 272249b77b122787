"""Filters for the tracking pages: MLflow counts time in milliseconds since the epoch."""

import datetime

from django import template

from models_app.templatetags.registry import metric

register = template.Library()


@register.filter
def from_ms(value: int | None) -> datetime.datetime | None:
    """A time in milliseconds since the epoch as an aware datetime (for ``|date``)."""
    if value is None:
        return None
    return datetime.datetime.fromtimestamp(value / 1000, tz=datetime.UTC)


@register.filter
def duration_ms(start: int | None, end: int | None) -> str:
    """How long from ``start`` to ``end`` (milliseconds), as "2 h 5 min", "41 s"; "–" while
    the run has no end."""
    if start is None or end is None or end < start:
        return "–"
    seconds = (end - start) // 1000
    if seconds < 60:
        return f"{seconds} s" if seconds else f"{end - start} ms"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@register.filter
def metric_value(row) -> str:
    """A logged metric's value as MLflow stores it: NaN by its flag, others formatted."""
    if row is None:
        return "–"
    return "NaN" if row.is_nan else metric(row.value)
