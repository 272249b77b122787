"""Approvals that expire (issue 14, part 4): a policy's approval_valid_days, "revalidation due"
on every surface with a moved clock, the once-per-approval webhook, revalidation rounds on
the same content."""

from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from approvals import expiry, webhooks
from approvals import services as workflow
from approvals.models import Review, ReviewPolicy, WebhookDelivery
from approvals.services.reviews import StaleContent
from audit.models import AuditEvent
from core.errors import Conflict
from models_app import services as catalogue
from models_app import storage
from models_app.models import ModelVersion
from registry_site import invariants
from registry_site.mlflow_compat import cache
from tests import factories
from tests.approvals.conftest import good_version

pytestmark = pytest.mark.django_db
S = ModelVersion.Status
MS = timedelta(milliseconds=1)  # the JSON API gives times to the millisecond
DAYS = 3  # short: the signed-in session (two weeks) outlives every clock move here
MLFLOW = "/api/2.0/mlflow"


class Clock:
    """``django.utils.timezone.now`` moved forward by ``offset`` (the project has no
    freezegun): everything that asks Django for the time sees the moved clock."""

    def __init__(self, real):
        self.real = real
        self.offset = timedelta(0)

    def now(self):
        return self.real() + self.offset

    def move_to(self, **since_start) -> None:
        self.offset = timedelta(**since_start)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock(timezone.now)
    monkeypatch.setattr(timezone, "now", c.now)
    return c


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def fresh(version) -> ModelVersion:
    return ModelVersion.objects.select_related("model").get(pk=version.pk)


def set_valid_days(model, days, actor=None, required_approvals=1) -> None:
    workflow.policy_update(
        actor=actor or model.owner,
        model=model,
        required_approvals=required_approvals,
        approval_valid_days=days,
    )


def approved(model, editor, reviewer, auc=0.9) -> ModelVersion:
    v = good_version(model, editor, auc=auc)
    workflow.version_submit(actor=editor, version=v)
    workflow.review_approve(actor=reviewer, version=v)
    return fresh(v)


def in_production(model, editor, reviewer, promoter) -> ModelVersion:
    v = approved(model, editor, reviewer)
    workflow.alias_set(actor=promoter, model=model, name="production", version=v)
    return fresh(v)


def page(name: str, version) -> str:
    return reverse(f"approvals:{name}", args=[version.model.slug, version.number])


def mlflow_tags(client, version) -> dict:
    got = client.get(
        f"{MLFLOW}/model-versions/get", {"name": version.model.name, "version": version.number}
    )
    assert got.status_code == 200, got.content
    return {t["key"]: t["value"] for t in got.json()["model_version"]["tags"]}


def mark_due() -> str:
    out = StringIO()
    call_command("mark_revalidation_due", stdout=out)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# When an approval is due


def test_an_approval_is_due_only_after_the_policys_days(model, editor, reviewer, clock):
    set_valid_days(model, DAYS)
    v = approved(model, editor, reviewer)
    approved_at = v.decided_at
    state = expiry.expiry_of(v, DAYS, now=approved_at + timedelta(days=DAYS - 1))
    assert state == expiry.Expiry(approved_at + timedelta(days=DAYS), due=False)
    assert expiry.expiry_of(v, DAYS, now=approved_at + timedelta(days=DAYS + 1)).due

    clock.move_to(days=DAYS - 1)
    assert expiry.due_among(ModelVersion.objects.all()) == []
    clock.move_to(days=DAYS + 1)
    assert expiry.due_among(ModelVersion.objects.all()) == [v]


def test_approvals_do_not_expire_by_default(
    api_client, client_for, model, editor, reviewer, promoter, clock
):
    v = in_production(model, editor, reviewer, promoter)
    assert ReviewPolicy(model=model).approval_valid_days is None
    clock.move_to(days=13)
    assert expiry.due_among(ModelVersion.objects.all()) == []
    resolved = api_client(reviewer).get("/api/v1/models/fraud/aliases/production/resolve").json()
    assert resolved["approval"]["revalidation_due"] is False
    assert resolved["approval"]["approval_expires_at"] is None
    assert "registry.revalidation_due" not in mlflow_tags(client_for(reviewer), v)
    assert "revalidation due" not in client_for(reviewer).get("/models/fraud/").content.decode()
    assert mark_due() == "0 versions marked revalidation due.\n"


def test_only_approved_versions_expire(model, editor, reviewer, clock):
    set_valid_days(model, DAYS)
    draft = good_version(model, editor)
    v = approved(model, editor, reviewer)
    workflow.version_archive(actor=model.owner, version=v)
    clock.move_to(days=DAYS + 1)
    assert expiry.expiry_of(fresh(v), DAYS) == expiry.NEVER
    assert expiry.expiry_of(draft, DAYS) == expiry.NEVER


# ---------------------------------------------------------------------------------------------
# Every surface says so


def test_the_model_page_flags_the_version_and_the_alias_panel(
    client_for, model, editor, reviewer, promoter, clock
):
    set_valid_days(model, DAYS)
    in_production(model, editor, reviewer, promoter)
    c = client_for(reviewer)
    clock.move_to(days=DAYS - 1)
    assert "revalidation due" not in c.get("/models/fraud/").content.decode()
    clock.move_to(days=DAYS + 1)
    html = c.get("/models/fraud/").content.decode()
    start = html.index('id="aliases"')
    panel = html[start : html.index("</section>", start)]
    assert panel.count('class="pill due"') == 1  # production's version
    assert html.count('class="pill due"') == 2  # and its row in the grid of versions
    assert 'class="pill due"' in c.get("/models/fraud/aliases/").content.decode()


def test_the_inbox_lists_due_versions_to_their_reviewers_only(
    client_for, model, editor, reviewer, viewer, clock
):
    set_valid_days(model, DAYS)
    v = approved(model, editor, reviewer)
    clock.move_to(days=DAYS - 1)
    assert 'id="revalidation-due"' not in client_for(reviewer).get("/reviews/").content.decode()
    clock.move_to(days=DAYS + 1)
    html = client_for(reviewer).get("/reviews/").content.decode()
    section = html[html.index('id="revalidation-due"') :]
    assert f"fraud v{v.number}" in section and page("review", v) in section
    assert 'id="revalidation-due"' not in client_for(viewer).get("/reviews/").content.decode()


def test_the_inbox_and_model_page_do_a_constant_number_of_queries(
    client_for, model, owner, editor, reviewer, promoter, assert_constant_queries, clock
):
    set_valid_days(model, DAYS)
    other = factories.registered_model(owner, "churn")
    factories.grant(editor, other, "edit")
    factories.grant(reviewer, other, "review")
    set_valid_days(other, DAYS)
    in_production(model, editor, reviewer, promoter)
    approved(other, editor, reviewer)
    clock.move_to(days=DAYS + 1)
    c = client_for(reviewer)

    def inbox():
        response = c.get("/reviews/")
        assert response.status_code == 200

    def model_page():
        response = c.get("/models/fraud/")
        assert response.status_code == 200

    def grow():
        clock.move_to(days=0)
        for m in (model, other, model):
            approved(m, editor, reviewer, auc=0.9 + 0.001 * ModelVersion.objects.count())
        clock.move_to(days=DAYS + 1)

    count = assert_constant_queries(inbox, grow)
    assert 'id="revalidation-due"' in c.get("/reviews/").content.decode()
    assert c.get("/reviews/").content.decode().count("pill due") == 5
    # One query more than without expiry (the policy's days, read with the alias panel).
    assert assert_constant_queries(model_page, grow) <= 16
    assert count <= 12


def test_resolve_and_version_detail_say_due_and_when_it_expired(
    api_client, model, editor, reviewer, promoter, clock
):
    set_valid_days(model, DAYS)
    v = in_production(model, editor, reviewer, promoter)
    expires = v.decided_at + timedelta(days=DAYS)
    client = api_client(reviewer)
    clock.move_to(days=DAYS - 1)
    resolved = client.get("/api/v1/models/fraud/aliases/production/resolve").json()
    assert resolved["approval"]["revalidation_due"] is False
    assert abs(parse(resolved["approval"]["approval_expires_at"]) - expires) < MS
    clock.move_to(days=DAYS + 1)
    resolved = client.get("/api/v1/models/fraud/aliases/production/resolve").json()
    assert resolved["approval"]["revalidation_due"] is True
    assert resolved["version"]["revalidation_due"] is True
    detail = client.get(f"/api/v1/models/fraud/versions/{v.number}").json()
    assert detail["revalidation_due"] is True and detail["approval_expires_at"]


def test_the_mlflow_tag_turns_true_with_the_clock_even_through_the_answer_cache(
    client_for, model, editor, reviewer, promoter, clock, settings
):
    settings.REGISTRY_MLFLOW_CACHE_SECONDS = 3600
    cache.clear()
    set_valid_days(model, DAYS)
    v = in_production(model, editor, reviewer, promoter)
    c = client_for(reviewer)

    def model_answer():
        got = c.get(f"{MLFLOW}/registered-models/get", {"name": "fraud"}).json()
        return {t["key"]: t["value"] for t in got["registered_model"]["latest_versions"][0]["tags"]}

    clock.move_to(days=DAYS - 1)
    tags = mlflow_tags(c, v)
    assert tags["registry.revalidation_due"] == "false"
    assert tags["registry.approval_expires_at"] == (v.decided_at + timedelta(days=DAYS)).isoformat()
    assert model_answer()["registry.revalidation_due"] == "false"
    assert mlflow_tags(c, v) == tags  # answered from the cache now
    clock.move_to(days=DAYS + 1)  # no write in between: only the clock moved
    assert mlflow_tags(c, v)["registry.revalidation_due"] == "true"
    assert model_answer()["registry.revalidation_due"] == "true"
    workflow.review_revalidate(
        actor=reviewer, version=v, decision="approve", content_digest=v.content_digest
    )
    assert mlflow_tags(c, v)["registry.revalidation_due"] == "false"


def test_clients_cannot_set_the_reserved_tags(client_for, model, owner):
    good_version(model, owner)
    response = client_for(owner).post(
        f"{MLFLOW}/model-versions/set-tag",
        {"name": "fraud", "version": "1", "key": "registry.revalidation_due", "value": "false"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not ModelVersion.objects.get().tags.exists()


# ---------------------------------------------------------------------------------------------
# The once-per-approval notice


def test_the_command_fires_the_webhook_once_per_approval(model, owner, editor, reviewer, clock):
    set_valid_days(model, DAYS)
    hook, _ = webhooks.webhook_create(
        actor=owner, model=model, url="https://93.184.216.34/hook",
        events=["version.revalidation_due"], secret="",
    )  # fmt: skip
    v = approved(model, editor, reviewer)
    clock.move_to(days=DAYS - 1)
    assert mark_due() == "0 versions marked revalidation due.\n"
    clock.move_to(days=DAYS + 1)
    assert mark_due() == "1 version marked revalidation due.\n"
    assert mark_due() == "0 versions marked revalidation due.\n"
    delivery = WebhookDelivery.objects.get(webhook=hook)
    assert delivery.payload["event"] == "version.revalidation_due"
    assert delivery.payload["version"]["number"] == v.number
    expires = parse(delivery.payload["approval"]["expires_at"])
    assert expires == v.decided_at + timedelta(days=DAYS)
    event = AuditEvent.objects.get(action="version.revalidation_due")
    assert event.after["content_digest"] == v.content_digest

    workflow.review_revalidate(
        actor=reviewer, version=v, decision="approve", content_digest=v.content_digest
    )
    assert fresh(v).revalidation_marked_at is None
    assert mark_due() == "0 versions marked revalidation due.\n"  # renewed at day DAYS + 1
    clock.move_to(days=2 * DAYS + 2)
    assert mark_due() == "1 version marked revalidation due.\n"
    assert mark_due() == "0 versions marked revalidation due.\n"
    assert WebhookDelivery.objects.filter(webhook=hook).count() == 2


def test_marking_twice_records_one_event(model, editor, reviewer, clock):
    set_valid_days(model, DAYS)
    v = approved(model, editor, reviewer)
    later = timezone.now() + timedelta(days=DAYS + 1)
    assert workflow.version_mark_revalidation_due(version=v, now=later) is True
    assert workflow.version_mark_revalidation_due(version=v, now=later) is False
    assert AuditEvent.objects.filter(action="version.revalidation_due").count() == 1


def test_the_webhook_worker_also_marks_due_versions(model, owner, editor, reviewer, clock):
    set_valid_days(model, DAYS)
    approved(model, editor, reviewer)
    clock.move_to(days=DAYS + 1)
    call_command("deliver_webhooks", "--once", stdout=StringIO())
    assert AuditEvent.objects.filter(action="version.revalidation_due").count() == 1


def test_revalidation_due_is_recorded_as_the_registrys_scheduled_work(
    client_for, model, owner, editor, reviewer, clock
):
    set_valid_days(model, DAYS)
    v = approved(model, editor, reviewer)
    clock.move_to(days=DAYS + 1)
    assert mark_due() == "1 version marked revalidation due.\n"
    event = AuditEvent.objects.get(action="version.revalidation_due")
    assert event.actor_id is None and event.actor_username == "registry (scheduled)"
    c = client_for(owner)

    def row(html: str) -> str:
        start = html.index("version.revalidation_due")
        return html[html.rindex("<tr", 0, start) : html.index("</tr>", start)]

    assert "registry (scheduled)" in row(c.get(reverse("approvals:audit")).content.decode())
    assert "(anonymous)" not in row(c.get(reverse("approvals:audit")).content.decode())
    csv_text = b"".join(c.get(reverse("approvals:audit_csv")).streaming_content).decode()
    line = next(x for x in csv_text.splitlines() if "version.revalidation_due" in x)
    assert line.split(",")[2] == "registry (scheduled)"
    assert "registry (scheduled)" in row(c.get(v.get_absolute_url()).content.decode())


def test_the_version_page_shows_revalidation_due_with_the_clock_moved(
    client_for, model, owner, editor, reviewer, viewer, assert_constant_queries, clock
):
    set_valid_days(model, DAYS)
    factories.grant(viewer, model, "view")
    v = approved(model, editor, reviewer)
    c = client_for(viewer)
    clock.move_to(days=DAYS - 1)
    html = c.get(v.get_absolute_url()).content.decode()
    assert 'class="pill due"' not in html
    assert "the approval is valid until" in html
    clock.move_to(days=DAYS + 1)
    html = c.get(v.get_absolute_url()).content.decode()
    heading = html[html.index("<h1>") : html.index("</h1>")]
    assert 'class="pill due"' in heading and "revalidation due" in heading
    assert "the approval expired" in html and page("review", v) in html

    def request():
        assert c.get(v.get_absolute_url()).status_code == 200

    def grow():
        clock.move_to(days=0)
        for i in range(3):
            approved(model, editor, reviewer, auc=0.91 + 0.001 * i)
        clock.move_to(days=DAYS + 1)

    # An approved version's page made 21 queries before the badge; reading the policy's days
    # adds one (for every version: a draft's pin in test_browse.py went from 20 to 21).
    assert assert_constant_queries(request, grow) <= 22


# ---------------------------------------------------------------------------------------------
# Revalidating


def test_revalidating_renews_the_approval_on_the_same_content(
    client_for, model, editor, reviewer, clock
):
    set_valid_days(model, DAYS)
    v = approved(model, editor, reviewer)
    digest, first_approval = v.content_digest, v.decided_at
    clock.move_to(days=DAYS + 1)
    c = client_for(reviewer)
    review_html = c.get(page("review", v)).content.decode()
    assert "revalidation due" in review_html and ">Revalidate</button>" in review_html
    response = c.post(
        page("approve", v), {"content_digest": digest, "revalidation": "1", "reason": "still ok"}
    )
    assert response.status_code == 302
    v = fresh(v)
    assert (v.status, v.content_digest, v.review_round) == (S.APPROVED, digest, 1)
    assert v.decided_at > first_approval + timedelta(days=DAYS)
    assert not expiry.expiry_of(v, DAYS).due
    review = Review.objects.get(round=1)
    assert (review.reviewer, review.content_digest, review.reason) == (reviewer, digest, "still ok")
    assert AuditEvent.objects.filter(action="version.revalidated").count() == 1
    assert v.artifacts.count() == 1  # no new upload
    decisions = c.get(v.get_absolute_url()).content.decode()
    assert "revalidation 1" in decisions[decisions.index('id="decisions"') :]


def test_a_stale_digest_is_refused_and_nothing_is_recorded(
    api_client, client_for, model, editor, reviewer
):
    v = approved(model, editor, reviewer)
    stale = "sha256:" + "0" * 64
    response = client_for(reviewer).post(
        page("approve", v), {"content_digest": stale, "revalidation": "1"}
    )
    assert response.status_code == 409
    assert "changed since you opened it" in response.content.decode()
    response = api_client(reviewer).post(
        f"/api/v1/models/fraud/versions/{v.number}/reject",
        {"reason": "old", "content_digest": stale, "revalidation": True},
        content_type="application/json",
    )
    assert response.status_code == 409
    with pytest.raises(StaleContent):
        workflow.review_revalidate(
            actor=reviewer, version=v, decision="approve", content_digest=stale
        )
    assert Review.objects.count() == 1 and fresh(v).review_round == 0
    assert fresh(v).status == S.APPROVED


def test_the_api_revalidates_through_approve_and_reject(api_client, model, editor, reviewer):
    v = approved(model, editor, reviewer)
    body = {"content_digest": v.content_digest, "revalidation": True}
    response = api_client(reviewer).post(
        f"/api/v1/models/fraud/versions/{v.number}/approve", body, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["review"]["round"] == 1
    assert fresh(v).review_round == 1
    rejected = api_client(reviewer).post(
        f"/api/v1/models/fraud/versions/{v.number}/reject",
        body | {"reason": "drifted"},
        content_type="application/json",
    )
    assert rejected.status_code == 200, rejected.content
    assert rejected.json()["version"]["status"] == S.REJECTED
    assert rejected.json()["review"]["round"] == 2


def test_the_author_and_contributors_cannot_revalidate(model, owner, editor, reviewer):
    v = good_version(model, editor)
    catalogue.artifact_add(
        actor=owner, version=v, files=[storage.incoming_from_bytes("extra.bin", b"x")]
    )
    workflow.version_submit(actor=editor, version=v)
    workflow.review_approve(actor=reviewer, version=v)
    v = fresh(v)
    factories.grant(editor, model, "review")
    for who, rule in ((editor, "registered or submitted"), (owner, "contributor may not")):
        with pytest.raises(PermissionDenied, match=rule):
            workflow.review_revalidate(
                actor=who, version=v, decision="approve", content_digest=v.content_digest
            )
    assert Review.objects.count() == 1


def test_a_revalidation_round_needs_the_policys_quorum(model, editor, reviewer, reviewer2, clock):
    set_valid_days(model, DAYS, required_approvals=2)
    v = good_version(model, editor)
    workflow.version_submit(actor=editor, version=v)
    workflow.review_approve(actor=reviewer, version=v)
    workflow.review_approve(actor=reviewer2, version=v)
    v = fresh(v)
    clock.move_to(days=DAYS + 1)
    workflow.review_revalidate(
        actor=reviewer, version=v, decision="approve", content_digest=v.content_digest
    )
    assert fresh(v).review_round == 0 and expiry.expiry_of(fresh(v), DAYS).due
    with pytest.raises(Conflict, match="already revalidated"):  # once per reviewer per round
        workflow.review_revalidate(
            actor=reviewer, version=v, decision="approve", content_digest=v.content_digest
        )
    workflow.review_revalidate(
        actor=reviewer2, version=v, decision="approve", content_digest=v.content_digest
    )
    assert fresh(v).review_round == 1 and not expiry.expiry_of(fresh(v), DAYS).due


def test_rejecting_on_revalidation_rejects_and_leaves_production_flagged(
    client_for, model, editor, reviewer, promoter
):
    v = in_production(model, editor, reviewer, promoter)
    with pytest.raises(ValidationError):
        workflow.review_revalidate(
            actor=reviewer, version=v, decision="reject", content_digest=v.content_digest
        )
    response = client_for(reviewer).post(
        page("reject", v),
        {"content_digest": v.content_digest, "revalidation": "1", "reason": "drifted"},
    )
    assert response.status_code == 302
    assert fresh(v).status == S.REJECTED
    event = AuditEvent.objects.get(action="version.revalidation_rejected")
    assert event.reason == "drifted" and event.after["status"] == S.REJECTED
    assert model.aliases.get(name="production").version_id == v.pk  # not moved
    html = client_for(reviewer).get("/models/fraud/").content.decode()
    assert "rejected: not approved" in html
    assert invariants.check_aliases() == [] and invariants.check_audit() == []


def test_only_approved_versions_can_be_revalidated(model, editor, reviewer):
    v = good_version(model, editor)
    workflow.version_submit(actor=editor, version=v)
    with pytest.raises(Conflict, match="only approved versions can be"):
        workflow.review_revalidate(
            actor=reviewer, version=v, decision="approve", content_digest=fresh(v).content_digest
        )


# ---------------------------------------------------------------------------------------------
# The policy


def test_the_policy_page_sets_and_clears_the_days(client_for, model, owner):
    c = client_for(owner)
    url = reverse("approvals:policy", args=["fraud"])
    response = c.post(url, {"required_approvals": "1", "approval_valid_days": "90"})
    assert response.status_code == 302
    assert ReviewPolicy.objects.get(model=model).approval_valid_days == 90
    event = AuditEvent.objects.filter(action="policy.updated").latest("seq")
    assert event.after["approval_valid_days"] == 90
    assert 'name="approval_valid_days" min="1" max="3650" value="90"' in c.get(url).content.decode()
    for bad in ("0", "abc", "4000", "-3"):
        response = c.post(url, {"required_approvals": "1", "approval_valid_days": bad})
        assert response.status_code == 400, bad
        assert ReviewPolicy.objects.get(model=model).approval_valid_days == 90
    c.post(url, {"required_approvals": "1", "approval_valid_days": ""})
    assert ReviewPolicy.objects.get(model=model).approval_valid_days is None
