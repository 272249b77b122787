"""Comparing 2 to 10 versions side by side, of one model or across models."""

from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.rules import LOGIN, access
from models_app import diff
from models_app.access import visible_versions
from models_app.models import MetricSpec, VersionDataset

MIN_COMPARE = 2
MAX_COMPARE = 10


def parse_version_ids(raw: list[str]) -> tuple[list[int], str]:
    """The requested version ids in order, without repeats, or a message saying what is wrong."""
    if len(raw) > MAX_COMPARE:
        return [], f"Compare at most {MAX_COMPARE} versions at a time (you asked for {len(raw)})."
    ids: list[int] = []
    for value in raw:
        value = value.strip()
        if not value.isascii() or not value.isdigit():
            return [], f"{value[:40]!r} is not a version id: use ?v=<id>&v=<id>."
        if int(value) not in ids:
            ids.append(int(value))
    if len(ids) < MIN_COMPARE:
        return [], f"Pick at least {MIN_COMPARE} different versions to compare."
    return ids, ""


@access(LOGIN)
@require_GET
def compare(request: HttpRequest) -> HttpResponse:
    """Any signed-in user, for versions they may view: one they may not view is a 404, exactly
    like a version that does not exist. Bad input (too few, too many, not ids) is a 400."""
    ids, error = parse_version_ids(request.GET.getlist("v"))
    if error:
        context = {"nav_section": "models", "error": error, "max_compare": MAX_COMPARE}
        return render(request, "models_app/compare.html", context, status=400)
    found = (
        visible_versions(request.user)
        .filter(pk__in=ids)
        .select_related("model", "created_by")
        .prefetch_related(
            "metrics",
            "params",
            "dependencies",
            "tags",
            Prefetch("dataset_links", VersionDataset.objects.select_related("dataset")),
        )
    )
    by_id = {v.pk: v for v in found}
    if len(by_id) != len(ids):
        raise Http404("No such version.")
    versions = [by_id[pk] for pk in ids]
    # Deltas are judged by the first column's model: it is the baseline.
    baseline = versions[0].model
    specs = dict(MetricSpec.objects.filter(model=baseline).values_list("name", "higher_is_better"))
    metrics = diff.metric_table(
        [v.metric_map() for v in versions], lambda name: baseline.higher_is_better(name, specs)
    )
    return render(
        request,
        "models_app/compare.html",
        {
            "nav_section": "models",
            "breadcrumbs": [("Compare", None)],
            "versions": versions,
            "metrics": metrics,
            "sections": diff.compare_sections(versions),
            "same_model": len({v.model_id for v in versions}) == 1,
        },
    )
