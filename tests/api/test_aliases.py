"""Aliases through the API: who may move which, what an alias pointed at when, and resolve."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals import services as workflow
from approvals.models import Alias, AliasAssignment
from tests.api.conftest import error_of, good_version, send

pytestmark = pytest.mark.django_db

ALIASES = "/api/v1/models/fraud/aliases"


@pytest.fixture
def approved(model, editor, reviewer):
    def make(auc: float = 0.9):
        version = good_version(model, editor, auc=auc)
        workflow.version_submit(actor=editor, version=version)
        workflow.review_approve(actor=reviewer, version=version, reason="fine")
        version.refresh_from_db()
        return version

    return make


def test_promoter_moves_production_to_an_approved_version(api_client, promoter, approved):
    version = approved()
    response = send(api_client(promoter), "put", ALIASES + "/production",
                    {"version": version.number, "note": "Q1 release"})  # fmt: skip
    assert response.status_code == 200, response.content
    assert response.json() | {"updated_at": None} == {
        "alias": "production", "version": 1, "status": "approved", "protected": True,
        "updated_at": None,
    }  # fmt: skip
    assert AliasAssignment.objects.get().note == "Q1 release"


def test_editor_cannot_move_production(api_client, editor, approved):
    approved()
    response = send(api_client(editor), "put", ALIASES + "/production", {"version": 1})
    assert response.status_code == 403
    assert not Alias.objects.exists()


def test_only_approved_versions_become_production(api_client, promoter, model, editor):
    good_version(model, editor)
    response = send(api_client(promoter), "put", ALIASES + "/production", {"version": 1})
    assert response.status_code == 409
    assert "Only approved versions" in error_of(response)["message"]
    assert not Alias.objects.exists()


def test_editor_sets_an_ordinary_alias_on_a_draft(api_client, editor, model):
    good_version(model, editor)
    response = send(api_client(editor), "put", ALIASES + "/Champion", {"version": 1})
    assert response.status_code == 200
    assert response.json()["alias"] == "champion"


def test_an_unknown_version_is_400(api_client, editor, model):
    response = send(api_client(editor), "put", ALIASES + "/champion", {"version": 9})
    assert response.status_code == 400
    assert error_of(response)["field"] == "version"


def test_reading_aliases_now_and_at_a_moment(api_client, viewer, promoter, approved):
    first, second = approved(0.9), approved(0.95)
    workflow.alias_set(actor=promoter, model=first.model, name="production", version=first)
    AliasAssignment.objects.update(assigned_at=timezone.now() - timedelta(days=2))
    workflow.alias_set(actor=promoter, model=first.model, name="production", version=second)
    c = api_client(viewer)
    listed = c.get(ALIASES).json()
    assert [(a["alias"], a["version"]) for a in listed["items"]] == [("production", 2)]
    assert c.get(ALIASES + "/production").json()["version"] == 2
    yesterday = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    then = c.get(f"{ALIASES}/production?at={yesterday}")
    assert then.status_code == 200
    assert then.json()["version"] == 1
    before = c.get(f"{ALIASES}/production?at=2000-01-01T00:00:00")
    assert before.status_code == 404
    assert error_of(c.get(f"{ALIASES}/production?at=yesterday"))["field"] == "at"
    history = c.get(ALIASES + "/production/history?limit=1").json()
    assert [h["version"] for h in history["items"]] == [2]
    assert history["count"] == 2
    assert history["next"].endswith("?limit=1&page=2")


def test_rollback_needs_a_reason_and_returns_to_the_previous_version(
    api_client, promoter, approved
):
    first, second = approved(0.9), approved(0.95)
    for version in (first, second):
        workflow.alias_set(actor=promoter, model=first.model, name="production", version=version)
    c = api_client(promoter)
    refused = send(c, "post", ALIASES + "/production/rollback", {})
    assert refused.status_code == 400
    assert error_of(refused)["field"] == "reason"
    assert Alias.objects.get().version == second
    done = send(c, "post", ALIASES + "/production/rollback", {"reason": "latency regression"})
    assert done.status_code == 200
    assert done.json()["version"] == 1
    assert AliasAssignment.objects.first().kind == "rollback"


def test_removing_an_alias_keeps_its_history(api_client, editor, model):
    version = good_version(model, editor)
    workflow.alias_set(actor=editor, model=model, name="champion", version=version)
    c = api_client(editor)
    assert c.delete(ALIASES + "/champion?note=done").status_code == 204
    assert not Alias.objects.exists()
    assert c.get(ALIASES + "/champion").status_code == 404
    kinds = [h["kind"] for h in c.get(ALIASES + "/champion/history").json()["items"]]
    assert kinds == ["remove", "promote"]
    assert c.delete(ALIASES + "/champion").status_code == 409


def test_resolve_gives_version_approval_record_and_files(api_client, viewer, promoter, approved):
    version = approved()
    workflow.alias_set(actor=promoter, model=version.model, name="production", version=version)
    body = api_client(viewer).get(ALIASES + "/production/resolve").json()
    assert (body["model"], body["alias"]) == ("fraud", "production")
    assert body["version"]["number"] == 1
    assert body["version"]["status"] == "approved"
    assert body["approval"]["status"] == "approved"
    assert body["approval"]["submitted_by"] == "editor"
    [review] = body["approval"]["reviews"]
    assert (review["reviewer"], review["decision"], review["reason"]) == (
        "reviewer", "approve", "fine"
    )  # fmt: skip
    assert body["approval"]["overrides"] == []
    [file] = body["files"]
    assert file["path"] == "model.bin"
    assert file["sha256"] == version.artifacts.get().sha256
    assert file["download_url"].startswith("http://testserver/api/v1/models/fraud/")


def test_resolving_a_missing_alias_is_404(api_client, viewer, model):
    response = api_client(viewer).get(ALIASES + "/production/resolve")
    assert response.status_code == 404
    assert error_of(response)["message"] == "fraud has no alias production."
