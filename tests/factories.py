"""Small explicit factories for tests."""

from django.contrib.auth.models import Group, User

PASSWORD = "correct-horse-battery-staple"


def user(username: str, **fields) -> User:
    u = User.objects.create_user(
        username=username, email=f"{username}@example.org", password=PASSWORD, **fields
    )
    return u


def team(name: str, *members: User) -> Group:
    g = Group.objects.create(name=name)
    g.user_set.add(*members)
    return g


def registered_model(owner: User, name: str = "fraud-detector", *, signatures=False, **fields):
    """A model created through the service, so its owner holds manage.

    Its review policy has electronic signatures off unless ``signatures=True`` (tests of signing
    ask for them; the others decide without a password, as before signatures existed)."""
    from approvals.models import ReviewPolicy
    from models_app import services

    model = services.model_create(actor=owner, name=name, **fields)
    # By id: the model instance the test holds then caches no policy.
    ReviewPolicy.objects.update_or_create(
        model_id=model.pk, defaults={"signatures_required": signatures}
    )
    return model


def signing(meaning: str = "", password: str = PASSWORD):
    """A signature as its signer gives it (the first meaning of the action's default list
    unless one is named)."""
    from approvals.services import SignatureInput

    return SignatureInput(password=password, meaning=meaning or "Approved for production use")


def version(model, actor: User, *, metrics=None, files=None, **metadata):
    """A version with optional metrics ({"accuracy": 0.9} or rows) and files ({path: bytes})."""
    from models_app import services, storage
    from models_app.metadata import parse_metadata

    if metrics is not None:
        metadata["metrics"] = metrics
    incoming = [storage.incoming_from_bytes(p, c) for p, c in (files or {}).items()]
    return services.version_create(
        actor=actor, model=model, metadata=parse_metadata(metadata), files=incoming
    )


def grant(principal, model, role) -> None:
    """Give a user or group a role (and the roles it implies) on a model."""
    from guardian.shortcuts import assign_perm

    from models_app.access import Role

    for r in Role(role).implied:
        assign_perm(r.perm, principal, model)


# ---------------------------------------------------------------------------------------------
# Signatures, written the way approvals/services/signatures.py writes them: inside the
# decision's transaction, the decision's audit event carries the meaning, the printed name and
# the database's time (keys signature_meaning, signer_name, signed_at), and the Signature row
# keeps that event's seq and hash.


def _db_now(user_pk):
    from django.contrib.auth.models import User
    from django.db.models.functions import Now

    return User.objects.filter(pk=user_pk).annotate(now=Now()).values_list("now", flat=True).get()


def _signed(decide, *, actor, event_action, meaning, action, alias_name="", reason=""):
    """Run ``decide()`` (a service call) so that its ``event_action`` audit event is signed."""
    from unittest import mock

    from django.db import transaction

    from approvals.models import Signature
    from audit import chain

    real_record = chain.record
    signed = {}

    def record(**kwargs):
        if kwargs["action"] == event_action and "event" not in signed:
            signed["at"] = _db_now(actor.pk)
            name = actor.get_full_name() or actor.get_username()
            signed["name"] = name
            kwargs["after"] = {
                **(kwargs.get("after") or {}),
                "signature_meaning": meaning,
                "signer_name": name,
                "signed_at": signed["at"].isoformat(),
            }
            signed["event"] = real_record(**kwargs)
            return signed["event"]
        return real_record(**kwargs)

    with transaction.atomic(), mock.patch.object(chain, "record", record):
        decision = decide()
        version = decision.version
        event = signed["event"]
        digest = (event.after or {}).get("content_digest") or version.content_digest
        signature = Signature.objects.create(
            version=version,
            model_name=version.model.name,
            version_number=version.number,
            action=action,
            review=decision if action in ("approve", "reject") else None,
            alias_assignment=decision if action in ("promote", "rollback") else None,
            alias_name=alias_name,
            signer=actor,
            signer_username=actor.get_username(),
            printed_name=signed["name"],
            signed_at=signed["at"],
            meaning=meaning,
            reason=reason,
            content_digest=digest,
            audit_seq=event.seq,
            audit_hash=event.hash,
        )
    return signature


def sign_approval(version, reviewer, *, meaning="Approved for production use", reason=""):
    """``reviewer`` approves ``version`` with a signature."""
    from approvals import services

    return _signed(
        lambda: services.review_approve(actor=reviewer, version=version, reason=reason),
        actor=reviewer,
        event_action="review.approved",
        meaning=meaning,
        action="approve",
        reason=reason,
    )


def sign_rejection(version, reviewer, *, meaning="Rejected — not fit for use", reason="No."):
    from approvals import services

    return _signed(
        lambda: services.review_reject(actor=reviewer, version=version, reason=reason),
        actor=reviewer,
        event_action="review.rejected",
        meaning=meaning,
        action="reject",
        reason=reason,
    )


def sign_alias(
    version, promoter, *, name="production", meaning="Released for use under this alias", note=""
):
    """``promoter`` moves ``name`` onto ``version`` with a signature."""
    from approvals import services

    return _signed(
        lambda: services.alias_set(
            actor=promoter, model=version.model, name=name, version=version, note=note
        ),
        actor=promoter,
        event_action="alias.moved",
        meaning=meaning,
        action="promote",
        alias_name=name,
        reason=note,
    )


def sign_rollback(
    model, promoter, *, reason, name="production", meaning="Rolled back to the previous version"
):
    from approvals import services

    return _signed(
        lambda: services.alias_rollback(actor=promoter, model=model, reason=reason, name=name),
        actor=promoter,
        event_action="alias.rolled_back",
        meaning=meaning,
        action="rollback",
        alias_name=name,
        reason=reason,
    )
