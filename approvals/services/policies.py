"""A model's review policy: how many approvals, which gates, how long an approval lasts,
which decisions are signed."""

from django.core.exceptions import ValidationError
from django.db import transaction

from approvals.models import MetricGate, ReviewPolicy
from audit import chain
from models_app.access import Role, require
from models_app.models import RegisteredModel


def policy_update(
    *,
    actor,
    model: RegisteredModel,
    required_approvals: int,
    require_description: bool = True,
    require_training_dataset: bool = True,
    require_metrics: bool = True,
    verify_artifacts: bool = True,
    metric_gates: list[dict] = (),
    approval_valid_days: int | None = None,
    signatures_required: bool | None = None,
    machine_decisions_allowed: bool | None = None,
    approval_meanings: list[str] | None = None,
    rejection_meanings: list[str] | None = None,
    promotion_meanings: list[str] | None = None,
) -> ReviewPolicy:
    """Replace the model's review policy. Gates: [{metric, split, threshold, max_regression}].
    ``approval_valid_days``: None (approvals do not expire) or 1 to 3650 days. The signature
    settings (docs/signatures.md) left at ``None`` keep their current value."""
    require(actor, model, Role.MANAGE)
    meanings = {
        key: _check_meanings(key, value)
        for key, value in (
            ("approval_meanings", approval_meanings),
            ("rejection_meanings", rejection_meanings),
            ("promotion_meanings", promotion_meanings),
        )
        if value is not None
    }
    if not 1 <= required_approvals <= 10:
        raise ValidationError({"required_approvals": ["Between 1 and 10 approvals."]})
    if approval_valid_days is not None and not 1 <= approval_valid_days <= 3650:
        raise ValidationError(
            {"approval_valid_days": ["An approval stays valid 1 to 3650 days (or leave it empty)."]}
        )
    seen = set()
    for i, g in enumerate(metric_gates):
        if not g.get("metric"):
            raise ValidationError({f"gates[{i}]": ["Name the metric."]})
        if g.get("threshold") is None and g.get("max_regression") is None:
            raise ValidationError({f"gates[{i}]": ["Give a threshold, a tolerance, or both."]})
        if g.get("max_regression") is not None and g["max_regression"] < 0:
            raise ValidationError({f"gates[{i}]": ["The tolerance cannot be negative."]})
        key = (g["metric"], g.get("split", ""))
        if key in seen:
            raise ValidationError({f"gates[{i}]": [f"{g['metric']} appears twice."]})
        seen.add(key)
    with transaction.atomic():
        policy, _ = ReviewPolicy.objects.select_for_update().get_or_create(model=model)
        before = _policy_state(policy)
        policy.required_approvals = required_approvals
        policy.require_description = require_description
        policy.require_training_dataset = require_training_dataset
        policy.require_metrics = require_metrics
        policy.verify_artifacts = verify_artifacts
        policy.approval_valid_days = approval_valid_days
        if signatures_required is not None:
            policy.signatures_required = signatures_required
        if machine_decisions_allowed is not None:
            policy.machine_decisions_allowed = machine_decisions_allowed
        for key, value in meanings.items():
            setattr(policy, key, value)
        policy.save()
        policy.gates.all().delete()
        MetricGate.objects.bulk_create(
            MetricGate(
                policy=policy,
                metric=g["metric"],
                split=g.get("split", ""),
                threshold=g.get("threshold"),
                max_regression=g.get("max_regression"),
            )  # fmt: skip
            for g in metric_gates
        )
        chain.record(
            actor=actor, action="policy.updated", target=model, model=model,
            before=before, after=_policy_state(policy),
        )  # fmt: skip
    return policy


def _policy_state(policy: ReviewPolicy) -> dict:
    return {
        "required_approvals": policy.required_approvals,
        "require_description": policy.require_description,
        "require_training_dataset": policy.require_training_dataset,
        "require_metrics": policy.require_metrics,
        "verify_artifacts": policy.verify_artifacts,
        "approval_valid_days": policy.approval_valid_days,
        "signatures_required": policy.signatures_required,
        "machine_decisions_allowed": policy.machine_decisions_allowed,
        "approval_meanings": list(policy.approval_meanings),
        "rejection_meanings": list(policy.rejection_meanings),
        "promotion_meanings": list(policy.promotion_meanings),
        "gates": [
            {
                "metric": g.metric,
                "split": g.split,
                "threshold": g.threshold,
                "max_regression": g.max_regression,
            }  # fmt: skip
            for g in policy.gates.all()
        ]
        if policy.pk
        else [],
    }


MEANING_LABELS = {
    "approval_meanings": "approvals",
    "rejection_meanings": "rejections",
    "promotion_meanings": "alias moves and rollbacks",
}


def _check_meanings(key: str, values: list[str]) -> list[str]:
    """One to ten meanings, each named once, at most 200 characters."""
    cleaned = [v.strip() for v in values if v and v.strip()]
    what = MEANING_LABELS[key]
    if not 1 <= len(cleaned) <= 10:
        raise ValidationError({key: [f"Give between 1 and 10 signature meanings for {what}."]})
    for value in cleaned:
        if len(value) > 200:
            raise ValidationError({key: [f"Meanings are at most 200 characters: {value[:40]}…"]})
    if len(set(cleaned)) != len(cleaned):
        raise ValidationError({key: [f"A meaning for {what} appears twice."]})
    return cleaned
