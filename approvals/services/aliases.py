"""Aliases: moving one onto a version, rolling back, removing, and where one pointed at a time."""

import re

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals import gates, notify
from approvals.models import Alias, AliasAssignment, Signature
from approvals.selectors import rollback_target
from approvals.services import signatures
from approvals.services.reviews import S
from approvals.services.signatures import SignatureInput
from audit import chain
from core import faults
from core.errors import Conflict
from models_app.access import Role, require
from models_app.models import ModelVersion, RegisteredModel

ALIAS_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


def _validate_alias_name(name: str) -> str:
    name = (name or "").strip().lower()
    if not ALIAS_NAME.match(name):
        raise ValidationError(
            {"alias": ["Alias names are lower-case letters, digits, '-' and '_' (max 64)."]}
        )
    if name == "latest":
        raise ValidationError(
            {"alias": ["'latest' is reserved: it always means the newest version."]}
        )
    return name


def _move(
    *, actor, model, name, version, kind, note, signed=None, via_token: str = ""
) -> AliasAssignment:
    alias = Alias.objects.select_for_update().filter(model=model, name=name).first()
    previous = alias.version if alias else None
    if alias is None:
        try:
            with transaction.atomic():
                alias = Alias.objects.create(
                    model=model, name=name, version=version, protected=name in Alias.PROTECTED_NAMES
                )
        except IntegrityError:
            raise Conflict(
                f"{name} was set by someone else at the same moment; try again."
            ) from None
    else:
        Alias.objects.filter(pk=alias.pk).update(version=version, updated_at=timezone.now())
    faults.point("alias-moved")
    entry = AliasAssignment.objects.create(
        model=model,
        alias_name=name,
        version=version,
        version_number=version.number,
        previous_version=previous,
        previous_number=previous.number if previous else None,
        kind=kind,
        note=note,
        assigned_by=actor,
        assigned_at=timezone.now(),
        via_token=via_token,
    )
    event = chain.record(
        actor=actor,
        action="alias.rolled_back" if kind == AliasAssignment.Kind.ROLLBACK else "alias.moved",
        target=version,  # so the version's timeline shows when it became production
        model=model,
        before={"alias": name, "version": previous.number if previous else None},
        after={
            "alias": name,
            "version": version.number,
            **signatures.audit_fields(signed, via_token=via_token),
        },
        reason=note,
    )
    signatures.signature_record(
        signed, event=event, version=version, content_digest=version.content_digest,
        reason=note, alias_assignment=entry,
    )  # fmt: skip
    faults.point("alias-recorded")
    return entry


def _check_alias_target(actor, model, name: str, version: ModelVersion) -> None:
    if version.model_id != model.pk:
        raise ValidationError({"version": ["That version belongs to another model."]})
    if name in Alias.PROTECTED_NAMES:
        require(actor, model, Role.PROMOTE)
        if version.status != S.APPROVED:
            raise Conflict(
                f"Only approved versions may become {name}; version {version.number} is "
                f"{version.get_status_display().lower()}."
            )
    else:
        require(actor, model, Role.EDIT)


def _verify(actor, model, name: str, action: str, signature, via_token: str, target):
    """Moving production or staging is signed where the policy requires signatures; other
    aliases are not (a signature given for them is not asked for and not recorded). Verified
    before the move's transaction (a refused signature must leave its records), after the
    checks that need no lock: whoever may not move it is told so without being asked to sign."""
    if name not in Alias.PROTECTED_NAMES:
        return None, ""
    policy = gates.policy_for(model)
    if isinstance(target, ModelVersion) and (signature is not None or policy.signatures_required):
        # As it is now: the caller's copy may be older.
        _check_alias_target(actor, model, name, ModelVersion.objects.get(pk=target.pk))
    signed = signatures.signature_verify(
        actor=actor, signature=signature, action=action, policy=policy,
        target=target, model=model, via_token=via_token,
    )  # fmt: skip
    return signed, via_token if signed is None else ""


def alias_set(
    *,
    actor,
    model: RegisteredModel,
    name: str,
    version: ModelVersion,
    note: str = "",
    signature: SignatureInput | None = None,
    via_token: str = "",
):
    """Point an alias at a version. production/staging: promote role, approved versions only,
    signed where the policy requires signatures (approvals/services/signatures.py)."""
    name = _validate_alias_name(name)
    signed, via_token = _verify(
        actor, model, name, Signature.Action.PROMOTE, signature, via_token, version
    )
    with transaction.atomic():
        RegisteredModel.objects.select_for_update().get(pk=model.pk)
        locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
        _check_alias_target(actor, model, name, locked)
        current = Alias.objects.filter(model=model, name=name).values_list("version_id", flat=True)
        if list(current) == [locked.pk]:
            raise Conflict(f"{name} already points at version {locked.number}.")
        entry = _move(
            actor=actor, model=model, name=name, version=locked,
            kind=AliasAssignment.Kind.PROMOTE, note=note.strip(), signed=signed,
            via_token=via_token,
        )  # fmt: skip
    notify.alias_moved_on_commit(entry.pk)
    return entry


def alias_rollback(
    *,
    actor,
    model: RegisteredModel,
    reason: str,
    name: str = "production",
    signature: SignatureInput | None = None,
    via_token: str = "",
):
    """One click: return the alias to the version that held it before, with a reason; signed
    as alias_set is."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why you roll back."]})
    require(actor, model, Role.PROMOTE if name in Alias.PROTECTED_NAMES else Role.EDIT)
    signed, via_token = _verify(
        actor, model, name, Signature.Action.ROLLBACK, signature, via_token, model
    )
    with transaction.atomic():
        RegisteredModel.objects.select_for_update().get(pk=model.pk)
        target = rollback_target(model, name)
        if target is None:
            raise Conflict(f"{name} has no earlier version to roll back to.")
        target = ModelVersion.objects.select_for_update().get(pk=target.pk)
        if name in Alias.PROTECTED_NAMES and target.status != S.APPROVED:
            raise Conflict(
                f"The previous {name} version {target.number} is "
                f"{target.get_status_display().lower()}; promote an approved version instead."
            )
        entry = _move(
            actor=actor, model=model, name=name, version=target,
            kind=AliasAssignment.Kind.ROLLBACK, note=reason, signed=signed,
            via_token=via_token,
        )  # fmt: skip
    notify.alias_moved_on_commit(entry.pk)
    return entry


def _removal_checked(actor, model, name: str) -> ModelVersion:
    """Whoever may not remove the alias, or an alias that is not there, is told so before
    being asked to sign; the version it points at now, which the signature is for."""
    require(actor, model, Role.PROMOTE if name in Alias.PROTECTED_NAMES else Role.EDIT)
    alias = Alias.objects.filter(model=model, name=name).select_related("version").first()
    if alias is None:
        raise Conflict(f"{model.name} has no alias {name}.")
    return alias.version


def alias_delete(
    *,
    actor,
    model: RegisteredModel,
    name: str,
    note: str = "",
    signature: SignatureInput | None = None,
    via_token: str = "",
) -> None:
    """Remove an alias; its history stays. Edit role, promote for production and staging,
    whose removal is signed where the policy requires signatures, as moving them is: the
    signature is for the version the alias leaves, and is refused (409, nothing removed) if
    the alias moved to another version between signing and removing."""
    name = _validate_alias_name(name)
    note = (note or "").strip()
    signed, seen = None, None
    if name in Alias.PROTECTED_NAMES:
        seen = _removal_checked(actor, model, name)
        signed = signatures.signature_verify(
            actor=actor, signature=signature, action=Signature.Action.REMOVE,
            policy=gates.policy_for(model), target=seen, model=model, via_token=via_token,
        )  # fmt: skip
        via_token = via_token if signed is None else ""
    else:
        require(actor, model, Role.EDIT)
        via_token = ""
    with transaction.atomic():
        alias = (
            Alias.objects.select_for_update().filter(model=model, name=name)
            .select_related("version").first()
        )  # fmt: skip
        if alias is None:
            raise Conflict(f"{model.name} has no alias {name}.")
        version = alias.version
        if signed is not None and version.pk != seen.pk:
            raise Conflict(
                f"{name} moved to version {version.number} since you signed its removal from "
                f"version {seen.number}; nothing was removed. Reload and sign again."
            )
        entry = AliasAssignment.objects.create(
            model=model, alias_name=name, version=None, previous_version=version,
            previous_number=version.number, kind=AliasAssignment.Kind.REMOVE,
            note=note, assigned_by=actor, assigned_at=timezone.now(), via_token=via_token,
        )  # fmt: skip
        signing = signatures.audit_fields(signed, via_token=via_token)
        event = chain.record(
            actor=actor, action="alias.removed", target=version, model=model,
            before={"alias": name, "version": version.number},
            after={"alias": name, "version": None, **signing} if signing else None,
            reason=note,
        )  # fmt: skip
        signatures.signature_record(
            signed, event=event, version=version, content_digest=version.content_digest,
            reason=note, alias_assignment=entry,
        )  # fmt: skip
        alias.delete()
