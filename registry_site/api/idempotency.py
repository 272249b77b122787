"""``Idempotency-Key``: a create retried after a lost answer gets the first answer again.

The key is claimed by inserting its row at the start of the request's transaction; the
operation runs in that same transaction and its answer is stored with the claim. A request
with a key whose first request is still running gets 409 at once on PostgreSQL (an advisory
lock held by the first request's transaction); on SQLite it waits for the single writer. Once
the first committed, the same request gets its answer replayed. A failed answer (4xx/5xx)
rolls the claim back with everything else, so the client may retry.

Keys are per user, at most 255 printable ASCII characters, and expire after 24 hours.
"""

import contextlib
import hashlib
import json
from datetime import timedelta
from functools import wraps

from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Header

from core import jsonbody

from .helpers import error_response
from .models import IdempotencyKey

HEADER = "Idempotency-Key"
LIFETIME = timedelta(hours=24)
MAX_KEY_LENGTH = 255

# The header as an operation parameter, so that the OpenAPI schema documents it.
KeyHeader = Header(
    None,
    alias=HEADER,
    max_length=MAX_KEY_LENGTH,
    description="A key of yours (e.g. a UUID): retrying with it returns the first answer, for "
    "24 hours, instead of creating again.",
)


def request_hash(request: HttpRequest) -> str:
    """Method, path and body; a JSON body is hashed in canonical form, so a client that
    re-serialises the same document (other key order or spacing) still matches. A body that
    is not JSON (or nested too deeply) is hashed as sent; the operation then refuses it."""
    body = request.body
    with contextlib.suppress(ValueError):
        body = json.dumps(jsonbody.loads(body), sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.get_full_path().encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _bad_key(key: str) -> str | None:
    if not key or len(key) > MAX_KEY_LENGTH:
        return f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters."
    if not all(" " < ch <= "~" for ch in key):
        return f"{HEADER} must be printable ASCII without spaces (a UUID is a good choice)."
    return None


def _reused() -> HttpResponse:
    return error_response(
        422,
        "idempotency_key_reused",
        f"This {HEADER} was used for a different request (another method, path or body) "
        "in the last 24 hours. Use a new key for a new request.",
        field=HEADER,
    )


def _replay(row: IdempotencyKey) -> HttpResponse:
    response = HttpResponse(
        json.dumps(row.response_body),
        status=row.response_status,
        content_type="application/json; charset=utf-8",
    )
    response["Idempotent-Replayed"] = "true"
    return response


def _in_flight(user, key: str) -> bool:
    """On PostgreSQL: is a request with this key running now? Its transaction holds an advisory
    lock on the (user, key) until it ends; a retry that cannot take it is told so at once
    instead of waiting on the first request's row (SQLite has one writer: retries queue)."""
    if connection.vendor != "postgresql":
        return False
    digest = hashlib.sha256(f"idempotency:{user.pk}:{key}".encode()).digest()
    lock = int.from_bytes(digest[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock])
        return not cursor.fetchone()[0]


def _claim(user, key: str, fingerprint: str) -> HttpResponse | IdempotencyKey:
    """The new claim, or the answer to give instead (a replay, 409 while the first request
    runs, or 422 for another request)."""
    now = timezone.now()
    if _in_flight(user, key):
        existing = IdempotencyKey.objects.filter(user=user, key=key).first()
        if existing is not None and existing.request_hash != fingerprint:
            return _reused()
        return error_response(
            409,
            "idempotency_in_progress",
            "A request with this Idempotency-Key is still running; retry in a moment to get "
            "its answer.",
        )
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(
                user=user, key=key, request_hash=fingerprint, created_at=now
            )
    except IntegrityError:
        pass
    existing = IdempotencyKey.objects.get(user=user, key=key)
    if existing.request_hash != fingerprint:
        return _reused()
    if existing.response_status is None:  # only visible to the claiming transaction itself
        return error_response(409, "idempotency_in_progress", "This request is still running.")
    return _replay(existing)


def idempotent(run):
    """Wraps an operation's ``run`` (decorate_view): the claim, the operation and the stored
    answer commit together, or not at all."""

    @wraps(run)
    def inner(request: HttpRequest, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None or not request.user.is_authenticated:
            return run(request, *args, **kwargs)  # anonymous: the auth check answers 401
        problem = _bad_key(key)
        if problem:
            return error_response(400, "validation_error", problem, field=HEADER)
        # Expired keys of this user go first, on their own: a key is usable again after 24 h.
        IdempotencyKey.objects.filter(
            user=request.user, created_at__lt=timezone.now() - LIFETIME
        ).delete()
        with transaction.atomic():
            claim = _claim(request.user, key, request_hash(request))
            if isinstance(claim, HttpResponse):
                return claim
            response = run(request, *args, **kwargs)
            if 200 <= response.status_code < 300:
                claim.response_status = response.status_code
                claim.response_body = json.loads(response.content)
                claim.save(update_fields=["response_status", "response_body"])
            else:
                transaction.set_rollback(True)
        return response

    return inner
