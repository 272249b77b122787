"""Issue 16: the audit page pages by seq with Newer/Older cursors (no count of every event, no
OFFSET): walking either way shows each visible event once, in order, with the filters kept;
a cursor that does not decode shows the first page, as the models list does."""

import html
import re

import pytest
from django.db import transaction
from django.urls import reverse

from audit import chain
from audit.models import AuditEvent
from audit.views import KEYS, PAGE_SIZE
from core import keyset
from tests import factories

pytestmark = pytest.mark.django_db
AUDIT = reverse("approvals:audit")
ROW_SEQ = re.compile(r'<tr><td class="num">(\d+)</td>')


def _comments(actor, model, n):
    with transaction.atomic():
        for i in range(n):
            chain.record(actor=actor, action="comment.added", target=model, model=model,
                         after={"i": i})  # fmt: skip


def _page(client, url, params=None):
    response = client.get(url, params)
    assert response.status_code == 200
    body = response.content.decode()
    links = {
        rel: html.unescape(href)
        for href, rel in re.findall(r'<a href="([^"]*)" rel="(next|prev)">', body)
    }
    return [int(s) for s in ROW_SEQ.findall(body)], links


def _walk(client, params, rel):
    """Every page from the first following ``rel`` links: the pages' seqs and their links."""
    pages = []
    seqs, links = _page(client, AUDIT, params)
    pages.append(seqs)
    while rel in links:
        seqs, links = _page(client, AUDIT + links[rel])
        pages.append(seqs)
    return pages, links


def test_older_then_newer_walks_every_visible_event_once_with_the_filters(
    client_for, owner, viewer
):
    mine = factories.registered_model(owner, "mine")
    other = factories.registered_model(owner, "other")
    factories.grant(viewer, mine, "view")
    _comments(owner, mine, 2 * PAGE_SIZE + 7)
    _comments(owner, other, 30)  # not the viewer's
    _comments(viewer, mine, 5)  # another actor
    client = client_for(viewer)
    params = {"actor": "owner", "action": "comment."}
    expected = list(
        AuditEvent.objects.filter(model=mine, actor_username="owner", action="comment.added")
        .order_by("-seq")
        .values_list("seq", flat=True)
    )

    older, last_links = _walk(client, params, "next")
    assert [len(p) for p in older] == [PAGE_SIZE, PAGE_SIZE, 7]
    assert [s for p in older for s in p] == expected  # newest first, no gap, no duplicate
    assert "next" not in last_links and "prev" in last_links
    assert "actor=owner" in last_links["prev"] and "action=comment." in last_links["prev"]

    newer = [older[-1]]
    links = last_links
    while "prev" in links:
        seqs, links = _page(client, AUDIT + links["prev"])
        newer.append(seqs)
    assert newer[::-1] == older  # the same pages back to the first, which has no Newer link


def test_the_first_page_has_no_newer_link_and_shows_no_total(client_for, owner, superuser):
    model = factories.registered_model(owner, "m")
    _comments(owner, model, PAGE_SIZE + 1)
    body = client_for(superuser).get(AUDIT).content.decode()
    assert 'rel="next"' in body and 'rel="prev"' not in body
    assert "Page 1" not in body  # no COUNT of every event behind a "Page 1 of N"


@pytest.mark.parametrize("cursor", ["after=garbage!", "before=WyJ4Il0", "after=", "page=9"])
def test_a_cursor_that_does_not_decode_shows_the_first_page(client_for, owner, superuser, cursor):
    model = factories.registered_model(owner, "m")
    _comments(owner, model, PAGE_SIZE + 3)
    client = client_for(superuser)
    first, _ = _page(client, AUDIT)
    assert _page(client, f"{AUDIT}?{cursor}")[0] == first


def test_an_outsider_cannot_page_into_events_of_models_they_may_not_view(
    client_for, owner, outsider
):
    secret = factories.registered_model(owner, "secret")
    mine = factories.registered_model(outsider, "mine")
    _comments(owner, secret, PAGE_SIZE + 5)
    _comments(outsider, mine, 3)
    client = client_for(outsider)
    newest_secret = AuditEvent.objects.filter(model=secret).order_by("-seq").first()
    # a cursor just above the secret events: only the outsider's own are older
    cursor = AUDIT + "?after=" + keyset.encode(newest_secret, KEYS)
    seqs, _ = _page(client, cursor)
    assert set(seqs) <= set(AuditEvent.objects.filter(model=mine).values_list("seq", flat=True))
    assert "secret" not in client.get(cursor).content.decode()


def test_audit_pages_query_count_is_pinned_at_two_sizes(
    client_for, owner, viewer, assert_constant_queries
):
    model = factories.registered_model(owner, "m0")
    factories.grant(viewer, model, "view")
    _comments(owner, model, PAGE_SIZE + 1)
    client = client_for(viewer)
    deep = AuditEvent.objects.filter(model=model).order_by("-seq")[PAGE_SIZE].seq

    for url in (f"{AUDIT}?after=", f"{AUDIT}?action=comment.&after="):
        cursor = keyset.encode(AuditEvent(seq=deep), KEYS)

        def get(url=url + cursor):
            assert client.get(url).status_code == 200

        assert assert_constant_queries(get, lambda: _comments(owner, model, 300)) <= 7
