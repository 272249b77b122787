"""Sign-in events into the audit log. Django reports sign-ins only through these signals, so
this is the one place where signal handlers write: each in its own transaction."""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from audit import chain


@receiver(user_logged_in)
def record_sign_in(sender, request, user, **kwargs):
    with transaction.atomic():
        chain.record(actor=user, action="auth.signed_in", target=user)


@receiver(user_login_failed)
def record_failed_sign_in(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username", ""))[:150]
    user = get_user_model().objects.filter(username=username).first()
    with transaction.atomic():
        chain.record(
            actor=None,
            action="auth.sign_in_failed",
            target=user,
            after={"username": username},
        )
