"""The audit log: superusers see every event, others the events of models they may view and of
the experiments, runs and logged models they may view (approvals.selectors.audit_events), with
the parent versions they may not view redacted (approvals.selectors.redact_lineage)."""

import csv
import json
from datetime import datetime, time
from itertools import batched

from django import forms
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from approvals.selectors import audit_events, redact_lineage
from audit import readable
from audit.models import AuditEvent
from core import keyset
from core.rules import LOGIN, access

PAGE_SIZE = 50
# Newest first by the chain's sequence number (unique): the keyset of the page's cursors, which
# the (model, seq), (actor_username, seq) and (action, seq) indexes serve for each filter.
KEYS = [("seq", True)]
CSV_COLUMNS = [
    "seq", "created_at", "actor", "action", "model", "target_type", "target_id", "target",
    "reason", "ip_address", "before", "after", "hash",
    "signer_name", "signature_meaning", "signed_at",
]  # fmt: skip
# A signed decision's event carries its signature's manifestation in ``after`` (written by
# approvals/services/signatures.py): the CSV gives it columns of its own, read from the event
# itself, so this app needs nothing from the approvals app.
SIGNATURE_KEYS = ("signer_name", "signature_meaning", "signed_at")


def _signature_cells(after) -> list:
    if not isinstance(after, dict) or "signature_meaning" not in after:
        return ["" for _ in SIGNATURE_KEYS]
    return [after.get(key, "") for key in SIGNATURE_KEYS]


class AuditFilterForm(forms.Form):
    model = forms.CharField(required=False, max_length=200, help_text="model slug")
    actor = forms.CharField(required=False, max_length=150)
    action = forms.CharField(required=False, max_length=64, help_text="e.g. review. or alias.moved")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


def filtered_events(request: HttpRequest):
    form = AuditFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    events = audit_events(
        request.user,
        actor=data.get("actor", ""),
        action=data.get("action", ""),
        since=_day(data["since"], time.min) if data.get("since") else None,
        until=_day(data["until"], time.max) if data.get("until") else None,
    )
    if data.get("model"):
        events = events.filter(model__slug=data["model"])
    return form, events


def _day(day, at) -> datetime:
    return timezone.make_aware(datetime.combine(day, at), timezone.UTC)


@access(LOGIN)
@require_GET
def audit_list(request: HttpRequest) -> HttpResponse:
    """Signed-in users; superusers see all events, others those of the models and the
    experiments (with their runs and logged models) they may view."""
    form, events = filtered_events(request)
    page = _event_page(request, events)
    page.rows = redact_lineage(page.rows, request.user)
    for e in page.rows:
        e.lines = readable.lines(e)  # after the redaction
    query = request.GET.copy()
    for key in ("page", "after", "before"):
        query.pop(key, None)
    context = {
        "nav_section": "audit",
        "form": form,
        "page": page,
        "query": query.urlencode(),
    }
    return render(request, "audit/audit.html", context, status=400 if form.errors else 200)


def _event_page(request: HttpRequest, events) -> keyset.Page:
    """The page the Newer/Older links ask for: ``?after=`` / ``?before=`` a cursor (an index
    seek by seq, as fast deep as on top, with no count of every event); the first page
    otherwise, and for a cursor that does not decode (as the models list does)."""
    for direction in ("after", "before"):
        cursor = request.GET.get(direction)
        values = keyset.decode(cursor, AuditEvent, KEYS) if cursor else None
        if values is not None:
            return keyset.page_after(events, KEYS, PAGE_SIZE, **{direction: values})
    return keyset.page_after(events, KEYS, PAGE_SIZE)


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
    _, events = filtered_events(request)
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        chunks = batched(events.select_related("model").iterator(chunk_size=1000), 1000)
        for e in (e for chunk in chunks for e in redact_lineage(chunk, request.user)):
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
                    *_signature_cells(e.after),
                )  # fmt: skip
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit.csv"'
    return response
