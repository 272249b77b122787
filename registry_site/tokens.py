"""API tokens: creating, revoking and checking them.

A token reads ``mrt_<key id>_<secret>``. The key id finds the row; the SHA-256 digest of the
whole token is compared in constant time. Every failure (unknown, wrong, expired, revoked,
inactive user) looks the same to the caller.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit import chain
from core import sql
from registry_site.models import ApiToken

PREFIX = "mrt_"
LAST_USED_RESOLUTION = timedelta(minutes=1)  # at most one write per token per minute


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_create(
    *, actor, user, name: str, scope: str = ApiToken.Scope.READ, expires_days: int | None = None
) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns the row and the secret (shown once, never stored)."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ["Give the token a name (e.g. the pipeline using it)."]})
    if len(name) > 100:
        raise ValidationError({"name": ["Token names are at most 100 characters."]})
    if scope not in ApiToken.Scope.values:
        raise ValidationError(
            {"scope": [f"Scope must be one of {', '.join(ApiToken.Scope.values)}."]}
        )
    if expires_days is not None and not 1 <= expires_days <= 3650:
        raise ValidationError({"expires_days": ["Expiry must be between 1 and 3650 days."]})
    key_id = secrets.token_hex(6)
    plaintext = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    token = ApiToken(
        user=user,
        name=name,
        scope=scope,
        key_id=key_id,
        digest=_digest(plaintext),
        expires_at=timezone.now() + timedelta(days=expires_days) if expires_days else None,
    )
    try:
        with transaction.atomic():
            token.save()
            chain.record(
                actor=actor,
                action="token.created",
                target=token,
                after={
                    "user": user.get_username(),
                    "name": name,
                    "scope": scope,
                    "key_id": key_id,
                    "expires_at": token.expires_at.isoformat() if token.expires_at else None,
                },
            )
    except IntegrityError:
        raise ValidationError(
            {"name": [f"You already have an active token named {name!r}."]}
        ) from None
    return token, plaintext


def token_revoke(*, actor, token: ApiToken) -> None:
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if updated:
            chain.record(
                actor=actor,
                action="token.revoked",
                target=token,
                before={
                    "user": token.user.get_username(),
                    "name": token.name,
                    "key_id": token.key_id,
                },
            )


def authenticate_token(raw: str) -> ApiToken | None:
    """The active token for this secret, with its user, or None."""
    if not raw.startswith(PREFIX) or len(raw) > 200:
        hmac.compare_digest(_digest(raw), "0" * 64)  # same work either way
        return None
    key_id = raw[len(PREFIX) :].split("_", 1)[0]
    token = _active_token(key_id)
    expected = token.digest if token is not None else "0" * 64
    if not hmac.compare_digest(_digest(raw), expected) or token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def _active_token(key_id: str) -> ApiToken | None:
    """``ApiToken.objects.active().select_related("user").filter(key_id=…, user__is_active=True)``
    in hand-written SQL: it runs on every API call (core/sql.py says why)."""
    User = get_user_model()
    rows = sql.fetch(
        f"SELECT {sql.columns(ApiToken, 't')}, {sql.columns(User, 'u')} "  # noqa: S608 (sql.py)
        f"FROM {sql.table(ApiToken)} t JOIN {sql.table(User)} u ON u.id = t.user_id "
        "WHERE t.key_id = %s AND t.revoked_at IS NULL "
        "AND (t.expires_at IS NULL OR t.expires_at > %s) AND u.is_active = %s",
        [key_id, connection.ops.adapt_datetimefield_value(timezone.now()), True],
    )
    if not rows:
        return None
    token = sql.instance(ApiToken, rows[0])
    token.user = sql.instance(User, rows[0], sql.width(ApiToken))
    return token
