"""Failed sign-ins: counted per hour in a table that may be pruned, not appended to the chain.

Anyone can fail a sign-in, as often as the throttle lets them, so each failure cannot be a
permanent event: the chain would grow at an anonymous client's pace and keep whatever was
typed as a username for ever (sometimes a password typed into the wrong field). A failure for a
known account still leaves one chained event per account and hour (``auth.sign_in_failed``,
naming the account, never the text typed): the account's trail then shows someone tried it,
and at most 24 events a day per account is bounded by the number of accounts, not by an
attacker. Names matching no account are counted against the address alone."""

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit import chain
from audit.models import FailedSignIn

WINDOW = timedelta(hours=1)


def window_start(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def failed_sign_in_record(*, username: str, address: str | None) -> FailedSignIn:
    """Count one failed sign-in with ``username`` from ``address``."""
    User = get_user_model()
    user = User._default_manager.filter(**{User.USERNAME_FIELD: username[:150]}).first()
    now = timezone.now()
    start = window_start(now)
    with transaction.atomic():
        row, created = FailedSignIn.objects.select_for_update().get_or_create(
            window_start=start,
            user=user,
            address=address or "",
            defaults={"first_at": now, "last_at": now},
        )
        if not created:
            FailedSignIn.objects.filter(pk=row.pk).update(failures=F("failures") + 1, last_at=now)
        elif (
            user is not None
            and not FailedSignIn.objects.filter(window_start=start, user=user)
            .exclude(pk=row.pk)
            .exists()
        ):
            chain.record(
                actor=None,
                action="auth.sign_in_failed",
                target=user,
                after={"window_start": start.isoformat()},
            )
    return row


def failed_sign_ins_prune(*, older_than: timedelta) -> int:
    """Delete the counts whose last failure is older than ``older_than``; how many went."""
    deleted, _ = FailedSignIn.objects.filter(last_at__lt=timezone.now() - older_than).delete()
    return deleted
