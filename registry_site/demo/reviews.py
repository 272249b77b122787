"""The demo's review history: policies, reviews, comments and aliases, written through the
review workflow's services like any user's. Signatures are on in the demo's policies, so every
decision below is an electronic signature, made with the demo user's password, except on
readmission-risk, whose approval the demo dates in the past (below)."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from approvals import services as reviews
from models_app.models import ModelVersion, RegisteredModel
from registry_site.demo.users import DEMO_PASSWORD


def signed(meaning: str) -> reviews.SignatureInput:
    """A signature as the demo user would give it on the review page."""
    return reviews.SignatureInput(password=DEMO_PASSWORD, meaning=meaning)


TECHNICAL = "Reviewed — technical"
FOR_PRODUCTION = "Approved for production use"
RELEASED = "Released for use under this alias"


@contextmanager
def days_ago(days: int) -> Iterator[None]:
    """Everything that asks Django for the time inside the block (``timezone.now``: creation
    times, decisions, audit events) happens ``days`` days ago. Only for the start of the demo's
    history (the teams, then readmission-risk), seeded before everything else, so the audit
    chain's times still follow its order."""
    real = timezone.now
    timezone.now = lambda: real() - timedelta(days=days)
    try:
        yield
    finally:
        timezone.now = real


READMISSION_VALID_DAYS = 90
# The demo's teams are formed and readmission-risk approved this long ago: past its 90 days.
HISTORY_STARTS_DAYS_AGO = 120


def readmission_release(model: RegisteredModel, users: dict[str, User]) -> None:
    """A regulated model whose approvals expire after 90 days (approval_valid_days,
    docs/approval-expiry.md): v2 was approved and put in production 120 days ago (the caller
    runs this inside ``days_ago``), so it is due for revalidation now. Its policy does not ask
    for signatures, as for models that existed before signatures: a signature's time is the
    database's clock, which the demo cannot (and must not) date in the past."""
    dana, rita = users["dana"], users["rita"]
    reviews.policy_update(
        actor=dana,
        model=model,
        required_approvals=1,
        approval_valid_days=READMISSION_VALID_DAYS,
        signatures_required=False,
    )
    v2 = model.versions.get(number=2)
    reviews.version_submit(actor=dana, version=v2)
    reviews.review_approve(
        actor=rita, version=v2, reason="Calibrated on the 2024 discharges; Brier 0.17."
    )
    reviews.alias_set(
        actor=dana, model=model, name="production", version=v2, note="First clinical release"
    )


def fraud_review_history(model: RegisteredModel, users: dict[str, User]) -> None:
    """Approved versions, a rejected one, one waiting for review, production moved and
    rolled back once: the story the review workflow tells."""
    dana, rita, ravi, pat = users["dana"], users["rita"], users["ravi"], users["pat"]
    reviews.policy_update(
        actor=dana,
        model=model,
        required_approvals=1,
        signatures_required=True,
        metric_gates=[
            {"metric": "auc", "split": "test", "threshold": 0.85, "max_regression": 0.01},
            {"metric": "latency_ms", "split": "", "threshold": 25},
        ],
    )
    v = {x.number: x for x in model.versions.all()}
    for n in (1, 2, 3, 4, 5, 6):
        reviews.version_submit(actor=dana, version=v[n])
    reviews.review_approve(
        actor=rita, version=v[1], reason="Baseline; matches offline eval.",
        signature=signed(TECHNICAL),
    )  # fmt: skip
    reviews.review_approve(
        actor=ravi, version=v[2], reason="Small, consistent gain.", signature=signed(FOR_PRODUCTION)
    )
    reviews.review_reject(
        actor=ravi, version=v[3], reason="Recall dropped to 0.60 on the holdout; below the 0.62 "
        "we promised the fraud operations team.",
        signature=signed("Rejected — not fit for use"),
    )  # fmt: skip
    reviews.review_approve(actor=rita, version=v[4], signature=signed(TECHNICAL))
    reviews.comment_add(
        actor=rita, version=v[5], metric="latency_ms",
        body="p95 latency went up to 21.4 ms with xgboost 3.0; still inside the 25 ms budget.",
    )  # fmt: skip
    reviews.review_approve(
        actor=ravi, version=v[5], reason="AUC +0.012; latency within budget.",
        signature=signed(FOR_PRODUCTION),
    )  # fmt: skip
    for n in (1, 2, 4, 5):
        reviews.alias_set(
            actor=pat, model=model, name="production", version=v[n], note=f"Monthly release {n}",
            signature=signed(RELEASED),
        )  # fmt: skip
    reviews.alias_rollback(
        actor=pat, model=model,
        reason="v5 doubled false positives for one merchant category in the first hour.",
        signature=signed("Rolled back to the previous version"),
    )  # fmt: skip
    reviews.alias_set(
        actor=pat, model=model, name="staging", version=v[5], note="Investigate",
        signature=signed(RELEASED),
    )  # fmt: skip
    # v6 stays in review, waiting for the demo reviewers.


def triage_lite_release(
    model: RegisteredModel, version: ModelVersion, users: dict[str, User]
) -> None:
    """The distilled model's first version, its card complete, approved and in production."""
    dana, ravi, pat = users["dana"], users["ravi"], users["pat"]
    reviews.version_submit(actor=dana, version=version)
    reviews.review_approve(
        actor=ravi, version=version, reason="Card complete; within 2.5 points.",
        signature=signed(FOR_PRODUCTION),
    )  # fmt: skip
    reviews.alias_set(
        actor=pat, model=model, name="production", version=version, note="Fast path",
        signature=signed(RELEASED),
    )  # fmt: skip
