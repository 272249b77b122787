"""The page of one run: what it logged, how its metrics moved, the models and versions made
from it."""

from django.db.models import Prefetch, prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from models_app.charts import Point, line_chart
from tracking import selectors
from tracking.access import run_page_route
from tracking.models import LatestMetric, Run, RunInput
from tracking.views.experiments import crumbs

VERSIONS_SHOWN = 50
SOURCE_TAGS = {
    "script": "mlflow.source.name",
    "source_type": "mlflow.source.type",
    "commit": "mlflow.source.git.commit",
    "repository": "mlflow.source.git.repoURL",
    "branch": "mlflow.source.git.branch",
}


def _charts(run: Run, keys: list[str]) -> list[dict]:
    charts = []
    for series in selectors.metric_series(run, keys[: selectors.CHART_KEYS]):
        points = [Point(f"step {s.step}", s.value) for s in series.samples if not s.is_nan]
        charts.append(
            {
                "key": series.key,
                "total": series.total,
                "drawn": len(points),
                "svg": line_chart(points, title=series.key, unit="point"),
            }
        )
    return charts


@run_page_route
def run_detail(request: HttpRequest, run: Run) -> HttpResponse:
    """Who may view the run through its experiment, and whoever may view a version registered
    from it (404 for everyone else): its parameters, metrics (latest values and a chart of each
    history, downsampled), inputs, tags, logged models and the versions made from it."""
    prefetch_related_objects(
        [run],
        Prefetch("latest_metrics", queryset=LatestMetric.objects.order_by("key")),
        "params",
        "tags",
        Prefetch("inputs", queryset=RunInput.objects.order_by("pk")),
    )
    tags = {tag.key: tag.value for tag in run.tags.all()}
    latest = list(run.latest_metrics.all())
    experiment = run.experiment
    experiment_url = reverse("tracking:experiment_detail", args=[experiment.pk])
    trail = (experiment.name, experiment_url) if run.sees_experiment else (experiment.name, None)
    return render(
        request,
        "tracking/run_detail.html",
        {
            "nav_section": "experiments",
            "breadcrumbs": crumbs(trail, (run.name or run.pk, None)),
            "run": run,
            "experiment": experiment,
            "source": {name: tags.get(key, "") for name, key in SOURCE_TAGS.items()},
            "params": list(run.params.all()),
            "latest": latest,
            "charts": _charts(run, [m.key for m in latest]),
            "charts_left_out": max(0, len(latest) - selectors.CHART_KEYS),
            "inputs": list(run.inputs.all()),
            "tags": list(run.tags.all()),
            "logged_models": selectors.run_logged_models(run),
            "versions": list(selectors.versions_from_run(request.user, run.pk)[:VERSIONS_SHOWN]),
        },
    )
