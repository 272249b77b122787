"""Sign-in events into the audit log. Django reports sign-ins only through these signals, so
this is the one place where signal handlers write: each in its own transaction."""

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from audit import chain, sign_ins


@receiver(user_logged_in)
def record_sign_in(sender, request, user, **kwargs):
    with transaction.atomic():
        chain.record(actor=user, action="auth.signed_in", target=user)


@receiver(user_login_failed)
def record_failed_sign_in(sender, credentials, request=None, **kwargs):
    if request is not None and getattr(request, "sign_in_locked_out", False):
        return  # refused by the throttle without checking the password: nothing is written
    sign_ins.failed_sign_in_record(
        username=str(credentials.get("username", "")), address=chain.current_ip.get()
    )
