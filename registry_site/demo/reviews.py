"""The demo's review history: policies, reviews, comments and aliases, written through the
review workflow's services like any user's."""

from django.contrib.auth.models import User

from approvals import services as reviews
from models_app.models import ModelVersion, RegisteredModel


def fraud_review_history(model: RegisteredModel, users: dict[str, User]) -> None:
    """Approved versions, a rejected one, one waiting for review, production moved and
    rolled back once: the story the review workflow tells."""
    dana, rita, ravi, pat = users["dana"], users["rita"], users["ravi"], users["pat"]
    reviews.policy_update(
        actor=dana,
        model=model,
        required_approvals=1,
        metric_gates=[
            {"metric": "auc", "split": "test", "threshold": 0.85, "max_regression": 0.01},
            {"metric": "latency_ms", "split": "", "threshold": 25},
        ],
    )
    v = {x.number: x for x in model.versions.all()}
    for n in (1, 2, 3, 4, 5, 6):
        reviews.version_submit(actor=dana, version=v[n])
    reviews.review_approve(actor=rita, version=v[1], reason="Baseline; matches offline eval.")
    reviews.review_approve(actor=ravi, version=v[2], reason="Small, consistent gain.")
    reviews.review_reject(
        actor=ravi, version=v[3], reason="Recall dropped to 0.60 on the holdout; below the 0.62 "
        "we promised the fraud operations team.",
    )  # fmt: skip
    reviews.review_approve(actor=rita, version=v[4])
    reviews.comment_add(
        actor=rita, version=v[5], metric="latency_ms",
        body="p95 latency went up to 21.4 ms with xgboost 3.0; still inside the 25 ms budget.",
    )  # fmt: skip
    reviews.review_approve(actor=ravi, version=v[5], reason="AUC +0.012; latency within budget.")
    for n in (1, 2, 4, 5):
        reviews.alias_set(
            actor=pat, model=model, name="production", version=v[n], note=f"Monthly release {n}"
        )
    reviews.alias_rollback(
        actor=pat, model=model,
        reason="v5 doubled false positives for one merchant category in the first hour.",
    )  # fmt: skip
    reviews.alias_set(actor=pat, model=model, name="staging", version=v[5], note="Investigate")
    # v6 stays in review, waiting for the demo reviewers.


def triage_lite_release(
    model: RegisteredModel, version: ModelVersion, users: dict[str, User]
) -> None:
    """The distilled model's first version, its card complete, approved and in production."""
    dana, ravi, pat = users["dana"], users["ravi"], users["pat"]
    reviews.version_submit(actor=dana, version=version)
    reviews.review_approve(actor=ravi, version=version, reason="Card complete; within 2.5 points.")
    reviews.alias_set(actor=pat, model=model, name="production", version=version, note="Fast path")
