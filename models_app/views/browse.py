"""Browsing the catalogue: the model list, a model's page (charts and a grid of versions), the
CSV export and a version's page (its lineage: views/lineage.py). All read-only; every lookup goes
through models_app.access, so a model the user may not view is a 404 like a missing one.
"""

import csv
import json
from dataclasses import dataclass

from django import forms
from django.contrib.auth.models import Group
from django.core.paginator import Paginator
from django.db.models import Prefetch, QuerySet, prefetch_related_objects
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from approvals.selectors import alias_panel, redact_lineage, with_approval_expiry
from audit import readable
from audit.models import AuditEvent
from core.rules import LOGIN, access
from models_app import charts, selectors
from models_app.access import Role, model_route, version_route, visible_models
from models_app.diff import MetricKey, metric_label
from models_app.models import (
    Metric,
    ModelVersion,
    RegisteredModel,
    VersionDataset,
)

PAGE_SIZE = 25
CHART_VERSIONS = 50  # charts show the most recent versions only
MAX_CHARTS = 12
MAX_METRIC_SORTS = 200
TIMELINE_LIMIT = 50
CSV_CHUNK = 500

# ---------------------------------------------------------------------------------------------
# Model list


class ModelFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    team = forms.CharField(required=False, max_length=150)
    owner = forms.CharField(required=False, max_length=150)
    framework = forms.CharField(required=False, max_length=100)
    task = forms.ChoiceField(
        required=False, choices=[("", "Any task"), *RegisteredModel.Task.choices]
    )
    tag = forms.CharField(required=False, max_length=500, help_text="key or key=value")
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), *ModelVersion.Status.choices],
        help_text="has a version in this status",
    )
    sort = forms.ChoiceField(
        required=False, choices=[(k, label) for k, (label, _) in selectors.MODEL_SORTS.items()]
    )


@access(LOGIN)
@require_GET
def model_list(request: HttpRequest) -> HttpResponse:
    """Any signed-in user; lists only the models they may view."""
    form = ModelFilterForm(request.GET)
    form.is_valid()  # invalid fields are reported on the page and ignored
    filters = {name: value for name, value in form.cleaned_data.items() if value}
    models = selectors.model_list(request.user, **filters)
    page = Paginator(models, PAGE_SIZE).get_page(request.GET.get("page"))
    visible = visible_models(request.user)
    teams = Group.objects.filter(models__in=visible).distinct().order_by("name")
    return render(
        request,
        "models_app/model_list.html",
        {
            "nav_section": "models",
            "breadcrumbs": [("Models", None)],
            "form": form,
            "page": page,
            "team_names": list(teams.values_list("name", flat=True)),
        },
    )


# ---------------------------------------------------------------------------------------------
# Model page


def _metric_keys(model: RegisteredModel, limit: int | None = None) -> list[MetricKey]:
    keys = Metric.objects.filter(version__model=model).values_list("name", "split").distinct()
    keys = keys.order_by("name", "split")
    return list(keys[:limit] if limit else keys)


@dataclass(frozen=True)
class VersionSort:
    value: str  # as in the URL: "-number", "status", "metric:accuracy@test", "-metric:loss"
    field: str  # "number", "created_at", "status" or "metric"
    descending: bool
    metric: MetricKey | None = None


VERSION_SORT_FIELDS = ("number", "created_at", "status")


def parse_version_sort(value: str, metric_keys: list[MetricKey]) -> VersionSort | None:
    """``[-]number|created_at|status`` or ``[-]metric:<name>[@<split>]``; None if unknown."""
    descending = value.startswith("-")
    name = value.removeprefix("-")
    if name in VERSION_SORT_FIELDS:
        return VersionSort(value, name, descending)
    if name.startswith("metric:"):
        metric, _, split = name.removeprefix("metric:").partition("@")
        if (metric, split) in metric_keys:
            return VersionSort(value, "metric", descending, (metric, split))
    return None


def metric_sort_value(key: MetricKey) -> str:
    return f"metric:{key[0]}@{key[1]}" if key[1] else f"metric:{key[0]}"


def _sorted_versions(versions: QuerySet, sort: VersionSort) -> QuerySet:
    if sort.field == "metric":
        return versions.ordered_by_metric(*sort.metric, descending=sort.descending)
    prefix = "-" if sort.descending else ""
    return versions.order_by(f"{prefix}{sort.field}", "-number")


def _charts(model: RegisteredModel, specs: dict[str, bool]) -> tuple[list[charts.Chart], int]:
    """One chart per metric over the most recent versions, in one query."""
    recent = model.versions.order_by("-number").values("pk")[:CHART_VERSIONS]
    rows = Metric.objects.filter(version__in=recent).values_list(
        "version__number", "name", "split", "value"
    )
    by_key = charts.series(rows)
    made = [
        charts.Chart(key, model.higher_is_better(key[0], specs), points)
        for key, points in list(by_key.items())[:MAX_CHARTS]
    ]
    return made, max(0, len(by_key) - MAX_CHARTS)


@model_route(Role.VIEW, methods=["GET"])
def model_detail(request: HttpRequest, model: RegisteredModel) -> HttpResponse:
    """Anyone who may view the model (404 otherwise); buttons follow the user's roles."""
    specs = dict(model.metric_specs.values_list("name", "higher_is_better"))
    metric_keys = _metric_keys(model, MAX_METRIC_SORTS)
    requested = request.GET.get("sort", "")
    sort = parse_version_sort(requested or "-number", metric_keys)
    sort_ignored = sort is None
    sort = sort or parse_version_sort("-number", [])
    versions = _sorted_versions(model.versions.for_grid(), sort)
    page = Paginator(versions, PAGE_SIZE).get_page(request.GET.get("page"))
    panel = alias_panel(model, at=request.GET.get("at", ""), alias=request.GET.get("alias", ""))
    shown = with_approval_expiry(page.object_list, panel["approval_valid_days"])
    maps = [(v, v.metric_map()) for v in shown]
    columns = sorted({key for _, m in maps for key in m})
    made_charts, charts_left_out = _charts(model, specs)
    return render(
        request,
        "models_app/model_detail.html",
        panel
        | {
            "nav_section": "models",
            "breadcrumbs": [("Models", reverse("models_app:model_list")), (model.name, None)],
            "model": model,
            "tags": model.tags.all(),
            "can_edit": Role.EDIT in model.user_roles,
            "can_manage": Role.MANAGE in model.user_roles,
            "page": page,
            "sort": sort,
            "sort_ignored": requested if sort_ignored else "",
            "columns": [
                (metric_label(k), metric_sort_value(k), model.higher_is_better(k[0], specs))
                for k in columns
            ],
            "rows": [(v, [m.get(k) for k in columns]) for v, m in maps],
            "metric_sorts": [(metric_label(k), metric_sort_value(k)) for k in metric_keys],
            "charts": made_charts,
            "charts_left_out": charts_left_out,
        },
    )


# ---------------------------------------------------------------------------------------------
# CSV export

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value) -> str | float:
    """Text cells that a spreadsheet would run as a formula get a leading quote."""
    if isinstance(value, float | int):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(keys: list[MetricKey], versions):
    writer = csv.writer(_Echo())
    header = ["number", "status", "created_by", "created_at", "framework", "framework_version"]
    yield writer.writerow([csv_safe(h) for h in header + [metric_label(k) for k in keys]])
    for v in versions:
        metrics = v.metric_map()
        row = [
            v.number,
            v.status,
            v.created_by.get_username(),
            v.created_at.isoformat(),
            v.framework,
            v.framework_version,
        ]
        yield writer.writerow([csv_safe(c) for c in row] + [metrics.get(k, "") for k in keys])


@model_route(Role.VIEW, methods=["GET"])
def versions_csv(request: HttpRequest, model: RegisteredModel) -> StreamingHttpResponse:
    """Anyone who may view the model (404 otherwise): every version, streamed."""
    keys = _metric_keys(model)
    versions = model.versions.for_grid().order_by("number").iterator(chunk_size=CSV_CHUNK)
    response = StreamingHttpResponse(
        _csv_lines(keys, versions), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = content_disposition_header(True, f"{model.slug}-versions.csv")
    return response


# ---------------------------------------------------------------------------------------------
# Version page and lineage


@version_route(Role.VIEW, methods=["GET"])
def version_detail(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    """Anyone who may view the model (404 otherwise); draft actions need the edit role.
    Parents and children in models the user may not view appear as "hidden version"."""
    model = version.model
    prefetch_related_objects(
        [version],
        "metrics",
        "params",
        "dependencies",
        "tags",
        "artifacts",
        "aliases",
        "reviews__reviewer",
        Prefetch("dataset_links", VersionDataset.objects.select_related("dataset")),
        Prefetch(
            "parent_links",
            selectors.version_links(request.user, "parent"),
        ),
        Prefetch(
            "child_links",
            selectors.version_links(request.user, "child"),
        ),
        "created_by",
    )
    specs = dict(model.metric_specs.values_list("name", "higher_is_better"))
    timeline = AuditEvent.objects.filter(
        target_type="modelversion", target_id=str(version.pk)
    ).order_by("-seq")[:TIMELINE_LIMIT]
    timeline = redact_lineage(timeline, request.user)  # one query, before the lines
    for event in timeline:
        event.lines = readable.lines(event)
    return render(
        request,
        "models_app/version_detail.html",
        {
            "nav_section": "models",
            "breadcrumbs": _version_breadcrumbs(version),
            "model": model,
            "version": version,
            "metrics": [(m, model.higher_is_better(m.name, specs)) for m in version.metrics.all()],
            "signature_json": (
                json.dumps(version.signature, indent=2, sort_keys=True, ensure_ascii=False)
                if version.signature is not None
                else ""
            ),
            "can_edit_draft": Role.EDIT in model.user_roles and version.is_editable,
            "can_submit": Role.EDIT in model.user_roles and version.is_editable,
            "can_archive": Role.MANAGE in model.user_roles
            and version.status in (ModelVersion.Status.APPROVED, ModelVersion.Status.REJECTED),
            "aliases_held": [a.name for a in version.aliases.all()],
            "overrides": [r for r in version.reviews.all() if r.override_reason],
            "timeline": timeline,
        },
    )


def _version_breadcrumbs(version: ModelVersion, *extra) -> list:
    return [
        ("Models", reverse("models_app:model_list")),
        (version.model.name, version.model.get_absolute_url()),
        (f"v{version.number}", version.get_absolute_url() if extra else None),
        *extra,
    ]
