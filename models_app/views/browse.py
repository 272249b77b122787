"""Browsing the catalogue: the model list, a model's page (charts and a grid of versions), the
CSV export and a version's page (its lineage: views/lineage.py). All read-only; every lookup goes
through models_app.access, so a model the user may not view is a 404 like a missing one.
"""

import csv
import io
import json

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Prefetch, QuerySet, prefetch_related_objects
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from approvals.selectors import (
    alias_panel,
    redact_lineage,
    version_approval_expiry,
    version_decisions,
    with_approval_expiry,
)
from audit import readable
from audit.models import AuditEvent
from core import keyset
from core.rules import LOGIN, access
from models_app import charts, selectors, version_grid
from models_app.access import Role, model_route, version_route, visible_models
from models_app.diff import MetricKey, metric_label
from models_app.models import (
    Metric,
    ModelVersion,
    RegisteredModel,
    VersionDataset,
)
from models_app.version_grid import VersionSort
from tracking import selectors as tracking_selectors

PAGE_SIZE = 25
MAX_OFFSET_PAGE = 40  # ?page=N of the model list, beyond which only cursors page
CHART_VERSIONS = 50  # charts show the most recent versions only
MAX_CHARTS = 12
MAX_METRIC_SORTS = 200
TIMELINE_LIMIT = 50
CSV_CHUNK = 2000

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
    keys = selectors.MODEL_SORTS[filters.get("sort", "name")][1]
    page = _model_page(request, models, keys)
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
            "count": models.count(),
            "team_names": list(teams.values_list("name", flat=True)),
        },
    )


def _model_page(request: HttpRequest, models: QuerySet, keys) -> keyset.Page:
    """The page the links ask for: ``?after=`` / ``?before=`` a cursor (the pages' own Next
    and Previous links: an index seek, as fast deep as on top), or ``?page=N`` (an offset,
    for links made before cursors); the first page otherwise, and for a cursor or number
    that does not parse."""
    for direction in ("after", "before"):
        cursor = request.GET.get(direction)
        values = keyset.decode(cursor, RegisteredModel, keys) if cursor else None
        if values is not None:
            return keyset.page_after(models, keys, PAGE_SIZE, **{direction: values})
    number = request.GET.get("page", "")
    if number.isdigit() and 1 < int(number) <= MAX_OFFSET_PAGE:
        offset = (int(number) - 1) * PAGE_SIZE
        rows = list(models[offset : offset + PAGE_SIZE + 1])
        if rows:
            shown = rows[:PAGE_SIZE]
            return keyset.Page(
                shown,
                keyset.encode(shown[-1], keys) if len(rows) > PAGE_SIZE else None,
                keyset.encode(shown[0], keys),
            )
    return keyset.page_after(models, keys, PAGE_SIZE)


# ---------------------------------------------------------------------------------------------
# Model page


def _metric_counts(model: RegisteredModel) -> dict[MetricKey, int]:
    """The metrics the model's versions carry, by name and split, each with how many versions
    carry it: what the sort menu offers, read from the model's ModelMetricKey rows (kept by
    the services) rather than from every version's metrics."""
    counts = model.metric_counts.order_by("name", "split").values_list("name", "split", "versions")
    return {(name, split): n for name, split, n in counts[:MAX_METRIC_SORTS]}


def _known_sort(
    model: RegisteredModel, requested: str, menu: dict[MetricKey, int]
) -> tuple[VersionSort | None, int]:
    """The requested sort if it is well formed and, for a metric, some version has it; with
    how many versions have that metric (for a metric sort; 0 otherwise)."""
    sort = version_grid.parse_sort(requested)
    if sort is None or sort.field != "metric":
        return sort, 0
    if sort.metric in menu:
        return sort, menu[sort.metric]
    name, split = sort.metric
    counted = model.metric_counts.filter(name=name, split=split).values_list("versions", flat=True)
    having = next(iter(counted), 0)
    return (sort if having else None), having


def metric_sort_value(key: MetricKey) -> str:
    return f"metric:{key[0]}@{key[1]}" if key[1] else f"metric:{key[0]}"


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
    metric_counts = _metric_counts(model)
    requested = request.GET.get("sort", "")
    sort, having_metric = _known_sort(model, requested or "-number", metric_counts)
    sort_ignored = sort is None
    sort = sort or version_grid.parse_sort("-number")
    # A cursor belongs to the sort it was made for: with an ignored sort, start over.
    page = version_grid.grid_page(
        model,
        sort,
        after="" if sort_ignored else request.GET.get("after", ""),
        before="" if sort_ignored else request.GET.get("before", ""),
        some_lack_metric=having_metric < model.version_count,
    )
    panel = alias_panel(model, at=request.GET.get("at", ""), alias=request.GET.get("alias", ""))
    shown = with_approval_expiry(page.versions, panel["approval_valid_days"])
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
            "version_count": model.version_count,
            "sort": sort,
            "sort_ignored": requested if sort_ignored else "",
            "columns": [
                (metric_label(k), metric_sort_value(k), model.higher_is_better(k[0], specs))
                for k in columns
            ],
            "rows": [(v, [m.get(k) for k in columns]) for v, m in maps],
            "metric_sorts": [(metric_label(k), metric_sort_value(k)) for k in metric_counts],
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


CSV_HEADER = ["number", "status", "created_by", "created_at", "framework", "framework_version"]


def _numbered_chunks(model: RegisteredModel, *fields: str):
    """The model's versions by number, CSV_CHUNK at a time, each chunk one query on the
    (model, number) index from where the last one ended: (chunk, its metrics) with the chunk
    as (pk, number, *fields) tuples. A version registered meanwhile is in the CSV if its
    number comes after the chunk being read."""
    last = 0
    while True:
        chunk = model.versions.filter(number__gt=last).order_by("number")
        rows = list(chunk.values_list("pk", "number", *fields)[:CSV_CHUNK])
        if rows:
            # The chunk again as a subquery with its LIMIT: PostgreSQL then knows it is 2,000
            # versions and probes the metrics' (version, name, split) index for them. (A range
            # of numbers fools its estimate: every small model has versions 1 to 100.)
            yield rows, Metric.objects.filter(version__in=chunk.values("pk")[:CSV_CHUNK])
        if len(rows) < CSV_CHUNK:
            return
        last = rows[-1][1]


def _csv_metric_keys(model: RegisteredModel) -> list[MetricKey]:
    """Every metric any version has, a chunk of versions at a time: asked of the whole model
    at once, PostgreSQL hashes all its metrics (3 s at 100,000 versions) before the first
    byte; by chunks each question is a few index probes."""
    keys = set()
    for _, metrics in _numbered_chunks(model):
        keys.update(metrics.order_by().values_list("name", "split").distinct())
    return sorted(keys)


def _csv_chunks(model: RegisteredModel):
    """The CSV, a chunk of versions at a time: one query for the versions and one for their
    metrics per chunk, leaving as one piece of text, so memory stays flat whatever the size."""
    keys = _csv_metric_keys(model)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([csv_safe(h) for h in CSV_HEADER + [metric_label(k) for k in keys]])
    yield out.getvalue()
    out.seek(0)
    out.truncate()
    column = {key: i for i, key in enumerate(keys)}
    username = f"created_by__{get_user_model().USERNAME_FIELD}"
    fields = ("status", username, "created_at", "framework", "framework_version")
    for rows, metrics in _numbered_chunks(model, *fields):
        values = {pk: [""] * len(keys) for pk, *_ in rows}
        for version_id, name, split, value in metrics.order_by().values_list(
            "version_id", "name", "split", "value"
        ):
            if version_id in values and (name, split) in column:  # else: registered meanwhile
                values[version_id][column[name, split]] = value
        # Number, status and date never start like a formula; the names typed by people may.
        writer.writerows(
            [number, status, csv_safe(user), created_at.isoformat(), csv_safe(framework),
             csv_safe(framework_version), *values[pk]]
            for pk, number, status, user, created_at, framework, framework_version in rows
        )  # fmt: skip
        yield out.getvalue()
        out.seek(0)
        out.truncate()


@model_route(Role.VIEW, methods=["GET"])
def versions_csv(request: HttpRequest, model: RegisteredModel) -> StreamingHttpResponse:
    """Anyone who may view the model (404 otherwise): every version, streamed."""
    response = StreamingHttpResponse(_csv_chunks(model), content_type="text/csv; charset=utf-8")
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
    version.approval_expiry = version_approval_expiry(version)  # the "revalidation due" badge
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
            "decisions": version_decisions(version, reviews=version.reviews.all()),
            "timeline": timeline,
            # Anyone who may view a version may view the run it names (tracking.access).
            "run_page": tracking_selectors.run_exists(version.source_run),
        },
    )


def _version_breadcrumbs(version: ModelVersion, *extra) -> list:
    return [
        ("Models", reverse("models_app:model_list")),
        (version.model.name, version.model.get_absolute_url()),
        (f"v{version.number}", version.get_absolute_url() if extra else None),
        *extra,
    ]
