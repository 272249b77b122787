"""Answers of the MLflow read calls, kept in each worker process until their model changes.

Deployment tools poll the same few questions ("which version is production?") many times a
second. Every change to a model, its versions, tags or aliases writes an audit event for that
model in the same transaction (audit/chain.py), so the sequence number of the model's
newest event, read with the model by the access helper on every call (``model.audit_head``),
names the state an answer was built from: once the model changes, its old answers are never
served again. The number is read before the answer is built, so an entry never holds a state
older than its key. Entries also expire after ``REGISTRY_MLFLOW_CACHE_SECONDS`` (30 s; 0 turns
the cache off), which bounds what no audit event of the model marks, such as a user renamed in
the admin. Entries are MLflow shapes that do not depend on the caller: the access helper has
checked the caller's roles before the cache is asked.

One thing in an answer changes with no write at all: ``registry.revalidation_due`` turns
"true" when an approval expires (docs/approval-expiry.md). An answer that holds a version
whose approval has not expired yet is therefore kept only until the earliest such
``registry.approval_expires_at`` (wall-clock time, ``django.utils.timezone.now``); the way back
to "false" is a revalidation, which writes an audit event like any change.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from audit.models import AuditEvent
from models_app.models import RegisteredModel

from .serializers import EXPIRES_TAG, REVALIDATION_TAG

MAX_ENTRIES = 4096

# A model's newest audit event (what the access helper reads as ``model.audit_head``), for
# annotating a queryset of models: one probe of the (model, seq) index per model.
AUDIT_HEAD = Subquery(
    AuditEvent.objects.filter(model=OuterRef("pk")).order_by("-seq").values("seq")[:1]
)

# key → (monotonic deadline, wall-clock deadline or None, answer)
_entries: OrderedDict[tuple, tuple[float, datetime | None, dict]] = OrderedDict()
_lock = threading.Lock()


def answer(model: RegisteredModel, question: tuple, build: Callable[[], dict | None]):
    """``build()``'s answer to ``question`` about ``model`` (from an access helper), from the
    cache while the model has not changed."""
    head = getattr(model, "audit_head", None)
    return answers([(model.pk, head)], question, lambda positions: [build()])[0]


_NOT_HELD = object()


def answers(
    heads: list[tuple[int, int | None]],
    question: tuple,
    build: Callable[[list[int]], list[dict | None]],
) -> list[dict | None]:
    """``answer()`` for many models at once (a page of a search): ``heads`` holds each model's
    primary key and newest audit event, read with the model before anything is built;
    ``build(positions)`` describes, in one go, the models at those positions in ``heads`` that
    the cache does not hold."""
    seconds = settings.REGISTRY_MLFLOW_CACHE_SECONDS
    keys = [(pk, head, *question) if seconds and head is not None else None for pk, head in heads]
    found: list = [_NOT_HELD] * len(heads)
    now = time.monotonic()
    wall = timezone.now()
    if any(keys):
        with _lock:
            for i, key in enumerate(keys):
                entry = _entries.get(key) if key is not None else None
                if entry is not None and entry[0] > now and (entry[1] is None or entry[1] > wall):
                    _entries.move_to_end(key)
                    found[i] = entry[2]
    missing = [i for i, value in enumerate(found) if value is _NOT_HELD]
    if missing:
        built = build(missing)
        with _lock:
            for i, value in zip(missing, built, strict=True):
                found[i] = value
                if keys[i] is not None:
                    _entries[keys[i]] = (now + seconds, _flips_at(value, wall), value)
                    _entries.move_to_end(keys[i])
            while len(_entries) > MAX_ENTRIES:
                _entries.popitem(last=False)
    return found


def _flips_at(answer, now: datetime) -> datetime | None:
    """The earliest moment after ``now`` at which a version in ``answer`` turns "revalidation
    due" (None: nothing in it will without a write)."""
    soonest = None
    stack = [answer]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            tags = item.get("tags")
            if isinstance(tags, list):
                values = {t.get("key"): t.get("value") for t in tags if isinstance(t, dict)}
                if values.get(REVALIDATION_TAG) == "false" and values.get(EXPIRES_TAG):
                    when = datetime.fromisoformat(values[EXPIRES_TAG])
                    if when > now and (soonest is None or when < soonest):
                        soonest = when
            stack.extend(v for v in item.values() if isinstance(v, list | dict))
    return soonest


def clear() -> None:
    with _lock:
        _entries.clear()
