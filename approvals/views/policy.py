"""A model's review policy: quorum, required documentation (model card sections included),
metric gates, how long an approval stays valid. Manage role."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from approvals import gates, services
from models_app import cards
from models_app import services as catalogue
from models_app.access import Role, model_route
from models_app.models import CardSection, RegisteredModel

GATE_ROWS = 8
MEANING_FIELDS = (
    ("approval_meanings", "Meanings of an approval"),
    ("rejection_meanings", "Meanings of a rejection"),
    ("promotion_meanings", "Meanings of a move of production or staging, or a rollback"),
)


def _float(raw: str, what: str) -> float | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(f"{what} must be a number, got {raw[:30]!r}.") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValidationError(f"{what} must be a finite number.")
    return value


def _gates_from_post(post) -> list[dict]:
    rows = []
    for i in range(GATE_ROWS):
        metric = post.get(f"gate-{i}-metric", "").strip()
        if not metric:
            continue
        rows.append(
            {
                "metric": metric[:250],
                "split": post.get(f"gate-{i}-split", "").strip()[:100],
                "threshold": _float(post.get(f"gate-{i}-threshold"), f"Threshold of {metric}"),
                "max_regression": _float(
                    post.get(f"gate-{i}-max_regression"), f"Tolerance of {metric}"
                ),
            }
        )
    return rows


@model_route(Role.MANAGE, methods=["GET", "POST"])
def policy_edit(request: HttpRequest, model: RegisteredModel) -> HttpResponse:
    """Manage role: how many approvals, which gates."""
    errors: list[str] = []
    if request.method == "POST":
        try:
            raw = request.POST.get("required_approvals", "1")
            if not raw.isdigit():
                raise ValidationError("Required approvals must be a whole number from 1 to 10.")
            raw_days = request.POST.get("approval_valid_days", "").strip()
            if raw_days and not raw_days.isdigit():
                raise ValidationError(
                    "Approval valid for: a whole number of days from 1 to 3650, or empty."
                )
            with transaction.atomic():  # the policy and the card template change together
                services.policy_update(
                    actor=request.user,
                    model=model,
                    required_approvals=int(raw),
                    require_description="require_description" in request.POST,
                    require_training_dataset="require_training_dataset" in request.POST,
                    require_metrics="require_metrics" in request.POST,
                    verify_artifacts="verify_artifacts" in request.POST,
                    metric_gates=_gates_from_post(request.POST),
                    approval_valid_days=int(raw_days) if raw_days else None,
                    signatures_required="signatures_required" in request.POST,
                    machine_decisions_allowed="machine_decisions_allowed" in request.POST,
                    **{  # a list the form did not send is kept as it is
                        key: request.POST[key].splitlines()
                        for key, _ in MEANING_FIELDS
                        if key in request.POST
                    },
                )
                catalogue.card_template_update(
                    actor=request.user,
                    model=model,
                    required_sections=request.POST.getlist("card_required"),
                )
        except (ValidationError, PermissionDenied) as e:
            errors = e.messages if isinstance(e, ValidationError) else [str(e)]
        else:
            messages.success(request, f"Review policy of {model.name} saved.")
            return redirect("approvals:policy", model.slug)
    policy = gates.policy_for(model)
    existing = list(policy.gates.all()) if policy.pk else []
    rows = existing + [None] * (GATE_ROWS - len(existing))
    required = request.POST.getlist("card_required") if errors else cards.required_sections(model)
    context = {
        "nav_section": "models",
        "model": model,
        "policy": policy,
        "meaning_fields": [
            (key, label, request.POST.get(key, "") if errors else "\n".join(getattr(policy, key)))
            for key, label in MEANING_FIELDS
        ],
        "rows": rows,
        "card_sections": [(key, label, key in required) for key, label in CardSection.choices],
        "errors": errors,
        "posted_valid_days": request.POST.get("approval_valid_days", "")[:10],
        "breadcrumbs": [
            ("Models", "/models/"),
            (model.name, model.get_absolute_url()),
            ("Review policy", None),
        ],  # fmt: skip
    }
    return render(request, "approvals/policy.html", context, status=400 if errors else 200)
