"""The audit log: staff see every event, others the events of models they may view."""

import csv
from datetime import datetime, time

from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from approvals.models import AuditEvent
from models_app.access import visible_models
from registry_site.access import LOGIN, access

PAGE_SIZE = 50
CSV_COLUMNS = [
    "seq", "created_at", "actor", "action", "model", "target_type", "target_id", "target",
    "reason", "ip_address", "before", "after", "hash",
]  # fmt: skip


class AuditFilterForm(forms.Form):
    model = forms.CharField(required=False, max_length=200, help_text="model slug")
    actor = forms.CharField(required=False, max_length=150)
    action = forms.CharField(required=False, max_length=64, help_text="e.g. review. or alias.moved")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


def visible_events(user):
    events = AuditEvent.objects.all()
    if user.is_staff or user.is_superuser:
        return events
    return events.filter(model__in=visible_models(user))


def filtered_events(request: HttpRequest):
    form = AuditFilterForm(request.GET or None)
    events = visible_events(request.user)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        if data["model"]:
            events = events.filter(model__slug=data["model"])
        if data["actor"]:
            events = events.filter(actor_username=data["actor"])
        if data["action"]:
            action = data["action"]
            events = (
                events.filter(action__startswith=action)
                if action.endswith(".")
                else events.filter(action=action)
            )
        if data["since"]:
            events = events.filter(created_at__gte=_day(data["since"], time.min))
        if data["until"]:
            events = events.filter(created_at__lte=_day(data["until"], time.max))
    return form, events.order_by("-seq")


def _day(day, at) -> datetime:
    return timezone.make_aware(datetime.combine(day, at), timezone.UTC)


@access(LOGIN)
@require_GET
def audit_list(request: HttpRequest) -> HttpResponse:
    """Signed-in users; staff see all events, others those of models they may view."""
    form, events = filtered_events(request)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "nav_section": "audit",
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "actions": sorted(set(visible_events(request.user).values_list("action", flat=True)[:500])),
    }
    return render(request, "approvals/audit.html", context, status=400 if form.errors else 200)


class _Echo:
    def write(self, value):
        return value


def _csv_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@access(LOGIN)
@require_GET
def audit_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered events as CSV, streamed; same visibility as the page."""
    import json

    _, events = filtered_events(request)
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for e in events.select_related("model").iterator(chunk_size=1000):
            yield writer.writerow(
                _csv_cell(v)
                for v in (
                    e.seq,
                    e.created_at.isoformat(),
                    e.actor_username,
                    e.action,
                    e.model.name if e.model else "",
                    e.target_type,
                    e.target_id,
                    e.target_label,
                    e.reason,
                    e.ip_address,
                    json.dumps(e.before),
                    json.dumps(e.after),
                    e.hash,
                )  # fmt: skip
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit.csv"'
    return response
