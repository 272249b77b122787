"""Electronic signatures: the one way a decision is signed (docs/signatures.md).

A decision the model's policy wants signed (approving, rejecting, moving production or staging,
rolling back) is made with the signer's password, typed at that moment, and a meaning chosen
from the policy's list for that action. Signing runs in two steps around the decision:

1. ``signature_verify``, before the decision's transaction: the meaning must be one of the
   policy's, and the password is checked by Django's ``authenticate`` through the sign-in
   backends, throttle first. A wrong password is a failed sign-in (counted; the lockout
   applies) and refuses the decision; it leaves only the failed-sign-in count and a
   ``signature.refused`` audit event, written in its own transaction. While the account or
   address is locked out, signing is refused even with the right password.
2. Inside the decision's transaction: ``audit_fields`` reads the database's clock and gives the
   keys the decision's audit event carries (``signature_meaning``, ``signer_name``,
   ``signed_at``); ``signature_record`` then writes the Signature row bound to that event's
   sequence number and hash, with the same time.

A policy may allow machine decisions: an API token alone may then decide. That decision is
recorded as made by the token (``via_token``), never as a signature.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.http import HttpRequest

from approvals.models import ReviewPolicy, Signature
from audit import chain

A = Signature.Action

MISSING = (
    "This model's review policy requires an electronic signature: enter your password and "
    "choose the meaning of your signature."
)
MACHINE_CANNOT_SIGN = (
    "An API token alone cannot sign: this model's review policy requires an electronic "
    "signature. Send your password and the meaning of your signature in the body."
)
NOT_THE_SIGNER = "That password is not correct; nothing was signed or recorded."


@dataclass(frozen=True)
class SignatureInput:
    """What the signer typed: their password and the meaning they chose. ``request`` is the
    request the password came with (its address counts toward the sign-in lockout); code
    running outside a request (demo data, tests) leaves it out."""

    password: str
    meaning: str
    request: HttpRequest | None = field(default=None, compare=False, repr=False)


@dataclass
class Verified:
    """A signature whose password and meaning were checked, not yet recorded."""

    signer: object
    action: str
    meaning: str
    printed_name: str
    signed_at: datetime | None = None


def meanings_for(policy: ReviewPolicy, action: str) -> list[str]:
    if action == A.APPROVE:
        return list(policy.approval_meanings)
    if action == A.REJECT:
        return list(policy.rejection_meanings)
    return list(policy.promotion_meanings)


def printed_name(user) -> str:
    """The name printed with a signature: the user's full name, or their username when their
    account has none."""
    return (user.get_full_name() or "").strip() or user.get_username()


def signature_verify(
    *,
    actor,
    signature: SignatureInput | None,
    action: str,
    policy: ReviewPolicy,
    target,
    model,
    via_token: str = "",
) -> Verified | None:
    """Check a signature before the decision's transaction. ``None``: the decision is not
    signed (the policy does not require it, or a token decides where machine decisions are
    allowed). Raises ValidationError naming ``password`` or ``meaning`` otherwise."""
    if signature is None:
        if not policy.signatures_required:
            return None
        if via_token and policy.machine_decisions_allowed:
            return None
        raise ValidationError({"password": [MACHINE_CANNOT_SIGN if via_token else MISSING]})
    choices = meanings_for(policy, action)
    meaning = (signature.meaning or "").strip()
    if meaning not in choices:
        raise ValidationError(
            {"meaning": [f"Choose the meaning of your signature: {'; '.join(choices)}."]}
        )
    if not signature.password:
        raise ValidationError({"password": [MISSING]})
    request = signature.request if signature.request is not None else _bare_request()
    user = authenticate(request, username=actor.get_username(), password=signature.password)
    if user is None or user.pk != actor.pk:
        locked_out = bool(getattr(request, "axes_locked_out", False))
        _refused(actor=actor, action=action, target=target, model=model, locked_out=locked_out)
        if locked_out:
            minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
            raise ValidationError(
                {
                    "password": [
                        "Too many failed sign-ins for this account or address: signing is "
                        f"refused for {minutes} minutes, even with the right password."
                    ]
                }
            )
        raise ValidationError({"password": [NOT_THE_SIGNER]})
    return Verified(signer=actor, action=action, meaning=meaning, printed_name=printed_name(actor))


def _refused(*, actor, action: str, target, model, locked_out: bool) -> None:
    with transaction.atomic():
        chain.record(
            actor=actor,
            action="signature.refused",
            target=target,
            model=model,
            after={
                "action": action,
                "why": "locked out" if locked_out else "wrong password",
            },
        )


def _bare_request() -> HttpRequest:
    """A request for code signing outside one: the lockout counts the account, and the
    address of the request being served if any."""
    request = HttpRequest()
    request.method = "POST"
    request.META["REMOTE_ADDR"] = chain.current_ip.get() or "127.0.0.1"
    return request


def _database_now() -> datetime:
    """The database's clock, in UTC: on PostgreSQL the time of this statement, not ``now()``
    (the start of the transaction), so that signatures given one after another in a longer
    transaction keep their order (as Django's ``Now()`` reads it)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT statement_timestamp()")
            value = cursor.fetchone()[0]
        else:
            cursor.execute("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")
            value = datetime.fromisoformat(cursor.fetchone()[0]).replace(tzinfo=UTC)
    return value.astimezone(UTC)


def audit_fields(verified: Verified | None, *, via_token: str = "") -> dict:
    """The keys the decision's audit event carries about its signature (or its token), read
    inside the decision's transaction: the signing time is the database's clock now."""
    if verified is None:
        return {"via_token": via_token} if via_token else {}
    verified.signed_at = _database_now()
    return {
        "signature_meaning": verified.meaning,
        "signer_name": verified.printed_name,
        "signed_at": verified.signed_at.isoformat(),
    }


def signature_record(
    verified: Verified | None,
    *,
    event,
    version,
    content_digest: str,
    reason: str = "",
    review=None,
    alias_assignment=None,
) -> Signature | None:
    """Write the Signature row of a decision whose audit event ``event`` carries
    ``audit_fields(verified)``; inside the decision's transaction."""
    if verified is None:
        return None
    if verified.signed_at is None:
        raise RuntimeError("audit_fields() gives the signing time; call it first")
    return Signature.objects.create(
        version=version,
        model_name=version.model.name,
        version_number=version.number,
        action=verified.action,
        review=review,
        alias_assignment=alias_assignment,
        alias_name=alias_assignment.alias_name if alias_assignment is not None else "",
        signer=verified.signer,
        signer_username=verified.signer.get_username(),
        printed_name=verified.printed_name,
        signed_at=verified.signed_at,
        meaning=verified.meaning,
        reason=reason,
        content_digest=content_digest or "",
        audit_seq=event.seq,
        audit_hash=event.hash,
    )
