"""The audit page's queries (issue 16) are planned as index walks newest first, never a
sequential scan of the audit table: the reviewer's first page, a deep page (a cursor thousands
of events down), and each filter, as a reviewer who sees a part of the models and as a
superuser."""

import re

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals.selectors import audit_events
from audit.models import AuditEvent
from audit.views import KEYS
from core import keyset
from registry_site.demo import scale as loader
from tests.scale.plans import assert_no_seq_scan, explain

AUDIT = reverse("approvals:audit")
FILTERS = ["", "action=review.", "action=version.created", f"actor={loader.REVIEWER}"]


@pytest.fixture(params=[loader.ADMIN, loader.REVIEWER])
def persona(request, scale, client):
    user = User.objects.get(username=request.param)
    client.force_login(user)
    return client, user


def _queries_of(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return [
        q["sql"].replace("%", "%%")
        for q in ctx.captured_queries
        if re.match(r"\s*(SELECT|WITH)", q["sql"], re.I)
    ]


def _deep_cursor(user) -> str:
    events = audit_events(user)
    assert events.count() > 5_000  # enough events for a deep page to mean something
    return keyset.encode(events[5_000], KEYS)


@pytest.mark.parametrize("query", FILTERS)
def test_first_and_deep_audit_pages_do_not_scan_the_audit_table(persona, query):
    client, user = persona
    cursor = _deep_cursor(user)
    first = f"{AUDIT}?{query}"
    for url in (first, f"{first}&after={cursor}", f"{first}&before={cursor}"):
        for sql in _queries_of(client, url):
            assert_no_seq_scan(explain(sql), AuditEvent)
