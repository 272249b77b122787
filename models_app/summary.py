"""The summary a model's row keeps of its versions: the latest version's number, how many
versions it has, and how many in each status (RegisteredModel.latest_number, version_count,
draft_count, …). The model list, the dashboard, the review badge and the APIs read these
columns instead of aggregating every version.

Every service that adds, deletes or moves a version calls one of these in its own transaction,
while it holds the version's (and so the model's) row lock: a change is an UPDATE of the
model's row with F() expressions, so concurrent changes add up instead of overwriting each
other. ``check_invariants`` compares the columns with the versions (``wrong_counts``)."""

from django.db.models import Count, F, IntegerField, Max, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Greatest

from models_app.models import ModelVersion, RegisteredModel

S = ModelVersion.Status

# The column counting the versions in each status.
STATUS_COUNTS = {
    S.DRAFT: "draft_count",
    S.IN_REVIEW: "in_review_count",
    S.APPROVED: "approved_count",
    S.REJECTED: "rejected_count",
    S.ARCHIVED: "archived_count",
}
COLUMNS = ("latest_number", "version_count", *STATUS_COUNTS.values())


def status_moved(model_id: int, before: str, after: str) -> None:
    """One version of the model went from status ``before`` to ``after``."""
    if before == after:
        return
    RegisteredModel.objects.filter(pk=model_id).update(
        **{
            STATUS_COUNTS[before]: F(STATUS_COUNTS[before]) - 1,
            STATUS_COUNTS[after]: F(STATUS_COUNTS[after]) + 1,
        }
    )


def version_added(model_id: int, number: int, status: str = S.DRAFT) -> None:
    """A version numbered ``number`` was added to the model (the services' version_create
    writes this along with its insert instead: core.sql.insert_numbered's ``also``)."""
    RegisteredModel.objects.filter(pk=model_id).update(
        latest_number=Greatest(F("latest_number"), Value(number)),
        version_count=F("version_count") + 1,
        **{STATUS_COUNTS[status]: F(STATUS_COUNTS[status]) + 1},
    )


def version_removed(model_id: int, status: str) -> None:
    """A version in ``status`` was deleted from the model (after the DELETE: the latest
    number is read again from the versions left, one probe of the (model, number) index)."""
    left = ModelVersion.objects.filter(model=model_id).order_by("-number").values("number")[:1]
    RegisteredModel.objects.filter(pk=model_id).update(
        latest_number=Coalesce(Subquery(left, output_field=IntegerField()), 0),
        version_count=F("version_count") - 1,
        **{STATUS_COUNTS[status]: F(STATUS_COUNTS[status]) - 1},
    )


def _truth():
    """Per model: each summary column as the versions have it (subqueries on the model's
    versions; the (model, status, number) index answers each)."""
    versions = ModelVersion.objects.filter(model=OuterRef("pk")).order_by().values("model")

    def count(**lookups):
        counted = versions.filter(**lookups).annotate(n=Count("pk")).values("n")
        return Coalesce(Subquery(counted, output_field=IntegerField()), 0)

    latest = versions.annotate(top=Max("number")).values("top")
    return {
        "latest_number": Coalesce(Subquery(latest, output_field=IntegerField()), 0),
        "version_count": count(),
        **{column: count(status=status) for status, column in STATUS_COUNTS.items()},
    }


def recompute(model_ids=None) -> int:
    """Set the summary of these models (every model for None) from their versions, in one
    UPDATE: after a bulk write (an import, a delete) and in the migration that adds the
    columns. Returns how many models it set."""
    models = RegisteredModel.objects.all()
    if model_ids is not None:
        models = models.filter(pk__in=list(model_ids))
    return models.update(**_truth())


def wrong_counts():
    """The models whose summary differs from their versions, with the true values annotated
    as ``true_<column>`` (for check_invariants)."""
    truth = {f"true_{column}": value for column, value in _truth().items()}
    differs = Q()
    for column in COLUMNS:
        differs |= ~Q(**{column: F(f"true_{column}")})
    return RegisteredModel.objects.annotate(**truth).filter(differs).order_by("pk")
