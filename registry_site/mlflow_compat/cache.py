"""Answers of the MLflow read calls, kept in each worker process until their model changes.

Deployment tools poll the same few questions ("which version is production?") many times a
second. Every change to a model, its versions, tags or aliases writes an audit event for that
model in the same transaction (approvals/audit.py), so the sequence number of the model's
newest event, read with the model by the access helper on every call (``model.audit_head``),
names the state an answer was built from: once the model changes, its old answers are never
served again. The number is read before the answer is built, so an entry never holds a state
older than its key. Entries also expire after ``REGISTRY_MLFLOW_CACHE_SECONDS`` (30 s; 0 turns
the cache off), which bounds what no audit event of the model marks, such as a user renamed in
the admin. Entries are MLflow shapes that do not depend on the caller: the access helper has
checked the caller's roles before the cache is asked.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from django.conf import settings

from models_app.models import RegisteredModel

MAX_ENTRIES = 4096

_entries: OrderedDict[tuple, tuple[float, dict]] = OrderedDict()
_lock = threading.Lock()


def answer(model: RegisteredModel, question: tuple, build: Callable[[], dict | None]):
    """``build()``'s answer to ``question`` about ``model`` (from an access helper), from the
    cache while the model has not changed."""
    seconds = settings.REGISTRY_MLFLOW_CACHE_SECONDS
    head = getattr(model, "audit_head", None)
    if not seconds or head is None:
        return build()
    key = (model.pk, head, *question)
    now = time.monotonic()
    with _lock:
        entry = _entries.get(key)
        if entry is not None and entry[0] > now:
            _entries.move_to_end(key)
            return entry[1]
    value = build()
    with _lock:
        _entries[key] = (now + seconds, value)
        _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return value


def clear() -> None:
    with _lock:
        _entries.clear()
