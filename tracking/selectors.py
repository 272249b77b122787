"""Reads of the tracking data that more than one interface needs (the MLflow API now, the
run page and registration from a run later): each in a constant number of queries."""

from django.db.models import Prefetch, QuerySet

from tracking.models import (
    Experiment,
    LatestMetric,
    LoggedModel,
    Metric,
    Run,
    RunInput,
    RunOutput,
    TrackedFile,
)


def experiments_with_tags(queryset: QuerySet[Experiment]) -> QuerySet[Experiment]:
    return queryset.prefetch_related("tags")


def runs_with_data(queryset: QuerySet[Run]) -> QuerySet[Run]:
    """Runs with their experiment, creator, latest metrics, params, tags, inputs and outputs
    (seven queries however many runs)."""
    return queryset.select_related("experiment", "creator").prefetch_related(
        Prefetch("latest_metrics", queryset=LatestMetric.objects.order_by("key")),
        "params",
        "tags",
        Prefetch("inputs", queryset=RunInput.objects.order_by("pk")),
        Prefetch("outputs", queryset=RunOutput.objects.order_by("pk")),
    )


def run_with_data(run: Run) -> Run:
    return runs_with_data(Run.objects.filter(pk=run.pk)).get()


def logged_models_with_data(queryset: QuerySet[LoggedModel]) -> QuerySet[LoggedModel]:
    return queryset.select_related("experiment").prefetch_related("params", "tags")


def logged_model_metrics(models: list[LoggedModel]) -> dict[str, list[Metric]]:
    """The metrics logged with each model's id (the latest per key and run), in one query."""
    by_model: dict[str, dict[tuple[str, str], Metric]] = {m.pk: {} for m in models}
    rows = Metric.objects.filter(model_id__in=list(by_model)).order_by("step", "timestamp", "pk")
    for metric in rows:
        by_model[metric.model_id][metric.run_id, metric.key] = metric
    return {model_id: list(found.values()) for model_id, found in by_model.items()}


def metric_history(run: Run, key: str, *, limit: int) -> list[Metric]:
    return list(Metric.objects.filter(run=run, key=key).order_by("step", "timestamp", "pk")[:limit])


def files_of(owner: Run | LoggedModel) -> QuerySet[TrackedFile]:
    if isinstance(owner, Run):
        return TrackedFile.objects.filter(run=owner)
    return TrackedFile.objects.filter(logged_model=owner)
