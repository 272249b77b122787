"""The summary a model's row keeps of its versions: the latest version's number, how many
versions it has, and how many in each status (RegisteredModel.latest_number, version_count,
draft_count, …). The model list, the dashboard, the review badge and the APIs read these
columns instead of aggregating every version.

Every service that adds, deletes or moves a version calls one of these in its own transaction,
while it holds the version's (and so the model's) row lock: a change is an UPDATE of the
model's row with F() expressions, so concurrent changes add up instead of overwriting each
other. ``check_invariants`` compares the columns with the versions (``wrong_counts``).

The frameworks of a model's versions are counted the same way, in ModelFramework rows
(``framework_changed``; ``wrong_frameworks`` for check_invariants), and so are the metrics
its versions carry, in ModelMetricKey rows (``metrics_changed``; ``wrong_metric_keys``)."""

from collections.abc import Iterable
from functools import reduce
from operator import or_

from django.db import connection
from django.db.models import Count, F, IntegerField, Max, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Greatest

from core import sql
from models_app.models import Metric, ModelFramework, ModelMetricKey, ModelVersion, RegisteredModel

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


def framework_changed(model_id: int, before: str, after: str) -> None:
    """One version of the model went from framework ``before`` to ``after`` ("" for none: a
    version added has ``before`` "", one deleted ``after`` "")."""
    if before == after:
        return
    if before:
        counted = ModelFramework.objects.filter(model=model_id, framework=before)
        counted.update(versions=F("versions") - 1)
        counted.filter(versions=0).delete()
    if after:
        table = sql.table(ModelFramework)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (model_id, framework, versions) VALUES (%s, %s, 1) "  # noqa: S608 (core/sql.py)
                f"ON CONFLICT (model_id, framework) DO UPDATE SET versions = {table}.versions + 1",
                [model_id, after],
            )


def _framework_truth(model_ids=None) -> dict[tuple[int, str], int]:
    versions = ModelVersion.objects.exclude(framework="")
    if model_ids is not None:
        versions = versions.filter(model__in=model_ids)
    counted = versions.order_by().values("model", "framework").annotate(n=Count("pk"))
    return {(row["model"], row["framework"]): row["n"] for row in counted.iterator()}


def _framework_kept(model_ids=None) -> dict[tuple[int, str], int]:
    kept = ModelFramework.objects.all()
    if model_ids is not None:
        kept = kept.filter(model__in=model_ids)
    rows = kept.values_list("model", "framework", "versions").iterator()
    return {(model, framework): n for model, framework, n in rows}


def wrong_frameworks() -> dict[int, tuple[dict, dict]]:
    """The models whose ModelFramework rows differ from their versions: model id →
    (kept {framework: count}, the versions' {framework: count})."""
    return _differences(_framework_kept(), _framework_truth())


MetricKey = tuple[str, str]  # (name, split)


def metrics_changed(model_id: int, before: Iterable[MetricKey], after: Iterable[MetricKey]) -> None:
    """One version of the model went from the metrics ``before`` to ``after`` (each a
    (name, split) pair; a version added has none before, one deleted none after): one UPDATE
    and one DELETE for the metrics it lost, one INSERT for those it gained."""
    before, after = set(before), set(after)
    gone, added = sorted(before - after), sorted(after - before)
    if gone:
        counted = ModelMetricKey.objects.filter(model=model_id).filter(
            reduce(or_, (Q(name=name, split=split) for name, split in gone))
        )
        counted.update(versions=F("versions") - 1)
        counted.filter(versions=0).delete()
    if added:
        table = sql.table(ModelMetricKey)
        rows = ", ".join(["(%s, %s, %s, 1)"] * len(added))
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (model_id, name, split, versions) VALUES {rows} "  # noqa: S608 (core/sql.py)
                "ON CONFLICT (model_id, name, split) "
                f"DO UPDATE SET versions = {table}.versions + 1",
                [value for name, split in added for value in (model_id, name, split)],
            )


def _metric_truth(model_ids=None) -> dict[tuple[int, MetricKey], int]:
    metrics = Metric.objects.all()
    if model_ids is not None:
        metrics = metrics.filter(version__model__in=model_ids)
    counted = metrics.order_by().values("version__model", "name", "split").annotate(n=Count("pk"))
    return {
        (row["version__model"], (row["name"], row["split"])): row["n"] for row in counted.iterator()
    }


def _metric_kept(model_ids=None) -> dict[tuple[int, MetricKey], int]:
    kept = ModelMetricKey.objects.all()
    if model_ids is not None:
        kept = kept.filter(model__in=model_ids)
    rows = kept.values_list("model", "name", "split", "versions").iterator()
    return {(model, (name, split)): n for model, name, split, n in rows}


def wrong_metric_keys() -> dict[int, tuple[dict, dict]]:
    """The models whose ModelMetricKey rows differ from their versions' metrics: model id →
    (kept {(name, split): count}, the metrics' {(name, split): count})."""
    return _differences(_metric_kept(), _metric_truth())


def _differences(kept: dict, truth: dict) -> dict[int, tuple[dict, dict]]:
    """Per model whose counts differ anywhere: (kept {key: count}, true {key: count})."""
    wrong: dict[int, tuple[dict, dict]] = {}
    for model, key in truth.keys() | kept.keys():
        if truth.get((model, key)) != kept.get((model, key)):
            wrong.setdefault(model, ({}, {}))
    for side, counts in enumerate((kept, truth)):
        for (model, key), n in counts.items():
            if model in wrong:
                wrong[model][side][key] = n
    return wrong


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
    UPDATE, and their ModelFramework and ModelMetricKey rows: after a bulk write (an import,
    a delete) and in the migration that adds the columns. Returns how many models it set."""
    models = RegisteredModel.objects.all()
    kept = ModelFramework.objects.all()
    kept_metrics = ModelMetricKey.objects.all()
    if model_ids is not None:
        model_ids = list(model_ids)
        models = models.filter(pk__in=model_ids)
        kept = kept.filter(model__in=model_ids)
        kept_metrics = kept_metrics.filter(model__in=model_ids)
    kept.delete()
    ModelFramework.objects.bulk_create(
        ModelFramework(model_id=model, framework=framework, versions=n)
        for (model, framework), n in _framework_truth(model_ids).items()
    )
    kept_metrics.delete()
    ModelMetricKey.objects.bulk_create(
        (
            ModelMetricKey(model_id=model, name=name, split=split, versions=n)
            for (model, (name, split)), n in _metric_truth(model_ids).items()
        ),
        batch_size=5000,
    )
    return models.update(**_truth())


def wrong_counts():
    """The models whose summary differs from their versions, with the true values annotated
    as ``true_<column>`` (for check_invariants)."""
    truth = {f"true_{column}": value for column, value in _truth().items()}
    differs = Q()
    for column in COLUMNS:
        differs |= ~Q(**{column: F(f"true_{column}")})
    return RegisteredModel.objects.annotate(**truth).filter(differs).order_by("pk")
