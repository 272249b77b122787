"""The manifestation of electronic signatures (printed name, UTC time, meaning, standing) on
every surface: the review page, the version page, the signature sheet, the model card export,
the audit CSV, the resolve endpoint, the JSON version, the export archive."""

import csv
import io

import pytest
from django.db import connection
from django.urls import reverse

from approvals import services
from approvals.models import ReviewPolicy, Signature
from tests import factories
from tests.approvals.conftest import good_version


@pytest.fixture
def named(reviewer, reviewer2, promoter):
    for user, first, last in [
        (reviewer, "Rita", "Okafor"),
        (reviewer2, "Sam", "Lindqvist"),
        (promoter, "Pia", "Moreau"),
    ]:
        user.first_name, user.last_name = first, last
        user.save()
    return reviewer, reviewer2, promoter


@pytest.fixture
def signed(model, editor, named):
    """v1: approved by Rita with a signature, then moved to production by Pia, signed."""
    reviewer, _, promoter = named
    v = good_version(model, editor)
    services.version_submit(actor=editor, version=v)
    approval = factories.sign_approval(v, reviewer, reason="Metrics hold on the Q1 data")
    v.refresh_from_db()
    promotion = factories.sign_alias(v, promoter, note="release 2026.03")
    return v, approval, promotion


def sheet_url(v) -> str:
    return reverse("approvals:signatures", args=[v.model.slug, v.number])


def _manifested(html: str, signature: Signature) -> None:
    assert signature.printed_name in html
    assert signature.meaning in html
    assert f"{signature.signed_at:%Y-%m-%d %H:%M:%S} UTC" in html


# ---------------------------------------------------------------------------------------------
# Pages


def test_review_page_shows_each_reviews_signature(client_for, viewer, signed):
    v, approval, _ = signed
    html = client_for(viewer).get(reverse("approvals:review", args=[v.model.slug, v.number]))
    html = html.content.decode()
    when = f"{approval.signed_at:%Y-%m-%d %H:%M:%S}"
    assert f"Signed by <strong>Rita Okafor</strong>, {when} UTC — Approved for production use" in (
        html
    )
    _manifested(html, approval)
    assert sheet_url(v) in html


def test_version_page_shows_review_and_alias_move_signatures_and_links_the_sheet(
    client_for, viewer, signed
):
    v, approval, promotion = signed
    html = client_for(viewer).get(v.get_absolute_url()).content.decode()
    decisions = html[html.index('id="decisions"') :]
    decisions = decisions[: decisions.index("</section>")]
    _manifested(decisions, approval)
    _manifested(decisions, promotion)
    assert "production moved here" in decisions
    assert "Released for use under this alias" in decisions
    assert sheet_url(v) in decisions


def test_signature_sheet_prints_every_signature_with_its_audit_event(client_for, viewer, signed):
    v, approval, promotion = signed
    response = client_for(viewer).get(sheet_url(v))
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Signature sheet: {v.model.name} v{v.number}" in html
    assert v.content_digest in html
    assert "@media print" not in html  # print rules live in the stylesheet
    for s in (approval, promotion):
        row = html[html.index(f'id="signature-{s.pk}"') :]
        row = row[: row.index("</tr>")]
        _manifested(row, s)
        assert f"#{s.audit_seq}" in row and s.audit_hash in row
        assert "verifies" in row and "does not verify" not in row
        assert "valid" in row
    assert "Metrics hold on the Q1 data" in html and "release 2026.03" in html


def test_signature_sheet_is_404_for_outsiders_and_anonymous_is_sent_to_sign_in(
    client_for, outsider, signed, client
):
    v, *_ = signed
    assert client_for(outsider).get(sheet_url(v)).status_code == 404
    response = client.get(sheet_url(v))
    assert response.status_code == 302 and "/login" in response["Location"]


def test_signature_sheet_of_an_unsigned_version_says_so(client_for, viewer, model, editor):
    v = good_version(model, editor)
    html = client_for(viewer).get(sheet_url(v)).content.decode()
    assert "No signatures on this version." in html


def test_unsigned_decisions_are_listed_apart_not_as_signatures(
    client_for, viewer, model, editor, reviewer
):
    v = good_version(model, editor)
    services.version_submit(actor=editor, version=v)
    services.review_approve(actor=reviewer, version=v)  # the policy asked for no signature
    html = client_for(viewer).get(sheet_url(v)).content.decode()
    assert "No signatures on this version." in html
    unsigned = html[html.index("Decisions without a signature") :]
    assert "Approved by reviewer, not signed" in unsigned


def test_withdrawn_and_superseded_signatures_are_shown_and_marked(
    client_for, viewer, model, editor, named
):
    reviewer, reviewer2, promoter = named
    ReviewPolicy.objects.update_or_create(model=model, defaults={"required_approvals": 2})
    withdrawn = good_version(model, editor)
    services.version_submit(actor=editor, version=withdrawn)
    discarded = factories.sign_approval(withdrawn, reviewer)
    services.version_withdraw(actor=editor, version=withdrawn)

    first, second = good_version(model, editor, auc=0.91), good_version(model, editor, auc=0.92)
    for v in (first, second):
        services.version_submit(actor=editor, version=v)
        factories.sign_approval(v, reviewer)
        factories.sign_approval(v, reviewer2)
    replaced = factories.sign_alias(first, promoter)
    factories.sign_alias(second, promoter)

    c = client_for(viewer)
    html = c.get(sheet_url(withdrawn)).content.decode()
    row = html[html.index(f'id="signature-{discarded.pk}"') :]
    assert "withdrawn (its review was discarded" in row[: row.index("</tr>")]
    html = c.get(sheet_url(first)).content.decode()
    row = html[html.index(f'id="signature-{replaced.pk}"') :]
    assert "superseded (the alias was moved again later)" in row[: row.index("</tr>")]
    page = c.get(first.get_absolute_url()).content.decode()
    assert "(superseded)" in page
    page = c.get(withdrawn.get_absolute_url()).content.decode()
    assert "(withdrawn)" in page


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL's trigger refuses edits")
def test_a_tampered_signature_shows_does_not_verify_on_the_sheet_and_pages(
    client_for, viewer, signed
):
    v, approval, _ = signed
    Signature.objects.filter(pk=approval.pk).update(meaning="Reviewed — risk and compliance")
    c = client_for(viewer)
    html = c.get(sheet_url(v)).content.decode()
    row = html[html.index(f'id="signature-{approval.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "does not verify" in row
    assert "the meaning differs from the one in the audit event" in row
    assert "does not verify" in c.get(v.get_absolute_url()).content.decode()


def _grow_signatures(model, editor, reviewers, promoter, count: int):
    """``count`` more signed versions, each approved and moved to staging by signatures."""
    for i in range(count):
        v = good_version(model, editor, auc=0.9 + (i + 1) / 1000)
        services.version_submit(actor=editor, version=v)
        for reviewer in reviewers:
            factories.sign_approval(v, reviewer)
        factories.sign_alias(v, promoter, name="staging")


def test_sheet_and_version_page_queries_do_not_grow_with_signatures(
    client_for, viewer, model, editor, named, assert_constant_queries
):
    reviewer, reviewer2, promoter = named
    ReviewPolicy.objects.update_or_create(model=model, defaults={"required_approvals": 2})
    v = good_version(model, editor)
    services.version_submit(actor=editor, version=v)
    factories.sign_approval(v, reviewer)
    c = client_for(viewer)

    def more_on_v():
        factories.sign_approval(v, reviewer2)
        for name in ("staging", "production", "canary-a"):
            if name == "canary-a":
                services.alias_set(actor=editor, model=model, name=name, version=v)
            else:
                factories.sign_alias(v, promoter, name=name)
        _grow_signatures(model, editor, (reviewer, reviewer2), promoter, 2)
        factories.sign_rollback(model, promoter, reason="back", name="staging")

    def sheet():
        assert c.get(sheet_url(v)).status_code == 200

    def page():
        assert c.get(v.get_absolute_url()).status_code == 200

    sheet_count = assert_constant_queries(sheet, lambda: None)
    page_count = assert_constant_queries(page, lambda: None)
    more_on_v()
    from tests.conftest import count_queries

    assert count_queries(sheet) == sheet_count
    assert count_queries(page) == page_count
    html = c.get(sheet_url(v)).content.decode()
    assert html.count('id="signature-') >= 4


# ---------------------------------------------------------------------------------------------
# Model card, audit CSV, JSON API


def test_model_card_page_print_and_markdown_have_a_signatures_section(client_for, viewer, signed):
    v, approval, promotion = signed
    c = client_for(viewer)
    args = [v.model.slug, v.number]
    for name in ("models_app:version_card", "models_app:card_print"):
        html = c.get(reverse(name, args=args)).content.decode()
        section = html[html.index('id="card-signatures"') :]
        section = section[: section.index("</section>")]
        _manifested(section, approval)
        _manifested(section, promotion)
    text = c.get(reverse("models_app:card_markdown", args=args)).content.decode()
    section = text[text.index("## Signatures") : text.index("## Files")]
    assert (
        f"| Rita Okafor (reviewer) | {approval.signed_at:%Y-%m-%d %H:%M:%S} | "
        "Approved for production use | Approval | Metrics hold on the Q1 data | valid | "
        f"#{approval.audit_seq} `{approval.audit_hash}` |"
    ) in section
    assert "| Pia Moreau (promoter) |" in section and "Alias move of production" in section
    assert v.content_digest in section


def test_model_card_of_an_unsigned_version_says_no_signatures(client_for, viewer, model, editor):
    v = good_version(model, editor)
    text = client_for(viewer).get(reverse("models_app:card_markdown", args=[model.slug, 1]))
    assert "## Signatures\n\n_No signatures._" in text.content.decode()
    assert v.number == 1


def test_audit_csv_has_signer_meaning_and_time_on_signed_events(client_for, viewer, signed):
    v, approval, promotion = signed
    body = b"".join(client_for(viewer).get(reverse("approvals:audit_csv")).streaming_content)
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    by_seq = {int(r["seq"]): r for r in rows}
    for s in (approval, promotion):
        row = by_seq[s.audit_seq]
        assert row["signer_name"] == s.printed_name
        assert row["signature_meaning"] == s.meaning
        assert row["signed_at"] == s.signed_at.isoformat()
    unsigned = [r for r in rows if r["action"] == "version.submitted"]
    assert unsigned and all(r["signer_name"] == r["signature_meaning"] == "" for r in unsigned)


def _signature_json(body: dict, signature: Signature) -> dict:
    [found] = [s for s in body if s["audit_seq"] == signature.audit_seq]
    return found


def test_json_version_and_resolve_carry_the_signatures(api_client, viewer, signed):
    v, approval, promotion = signed
    c = api_client(viewer, scope="read")
    body = c.get(f"/api/v1/models/{v.model.name}/versions/{v.number}").json()
    shown = _signature_json(body["signatures"], approval)
    assert shown["printed_name"] == "Rita Okafor" and shown["signer"] == "reviewer"
    assert shown["meaning"] == "Approved for production use"
    assert shown["signed_at"].startswith(approval.signed_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert shown["content_digest"] == v.content_digest
    assert shown["standing"] == "valid" and shown["verifies"] is True and shown["problems"] == []
    assert shown["audit_hash"] == approval.audit_hash and shown["action"] == "approve"
    resolved = c.get(f"/api/v1/models/{v.model.name}/aliases/production/resolve").json()
    for signatures in (resolved["approval"]["signatures"], resolved["version"]["signatures"]):
        assert _signature_json(signatures, approval)["printed_name"] == "Rita Okafor"
        moved = _signature_json(signatures, promotion)
        assert moved["alias"] == "production" and moved["printed_name"] == "Pia Moreau"
        assert moved["meaning"] == "Released for use under this alias"


def test_json_version_is_404_for_outsiders_with_signatures(api_client, outsider, signed):
    v, *_ = signed
    response = api_client(outsider, scope="read").get(
        f"/api/v1/models/{v.model.name}/versions/{v.number}"
    )
    assert response.status_code == 404
    assert "Rita" not in response.content.decode()


def test_json_version_and_resolve_queries_do_not_grow_with_signatures(
    api_client, viewer, model, editor, named
):
    from tests.conftest import count_queries

    reviewer, reviewer2, promoter = named
    ReviewPolicy.objects.update_or_create(model=model, defaults={"required_approvals": 2})
    v = good_version(model, editor)
    services.version_submit(actor=editor, version=v)
    factories.sign_approval(v, reviewer)
    factories.sign_approval(v, reviewer2)
    factories.sign_alias(v, promoter)
    c = api_client(viewer, scope="read")

    def version():
        assert c.get(f"/api/v1/models/{model.name}/versions/1").status_code == 200

    def resolve():
        assert c.get(f"/api/v1/models/{model.name}/aliases/production/resolve").status_code == 200

    version(), resolve()  # warm
    few = count_queries(version), count_queries(resolve)
    for name in ("staging", "production", "staging"):
        other = good_version(model, editor, auc=0.95)
        services.version_submit(actor=editor, version=other)
        factories.sign_approval(other, reviewer)
        factories.sign_approval(other, reviewer2)
        factories.sign_alias(other, promoter, name=name)
        factories.sign_alias(v, promoter, name=name)
    assert len(c.get(f"/api/v1/models/{model.name}/versions/1").json()["signatures"]) == 6
    assert (count_queries(version), count_queries(resolve)) == few
