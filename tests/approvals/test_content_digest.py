"""Decisions bound to content: the digest recorded at submission, 409 when the content a
reviewer saw has changed, contributors kept from reviewing, the digest on every surface."""

import hashlib
import json

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from approvals import services as workflow
from approvals.models import Review
from approvals.services.reviews import StaleContent
from audit.models import AuditEvent
from models_app import digest, storage
from models_app import services as catalogue
from models_app.metadata import parse_metadata
from models_app.models import ModelVersion
from tests import factories
from tests.approvals.conftest import good_version

pytestmark = pytest.mark.django_db
S = ModelVersion.Status


def fresh(version) -> ModelVersion:
    return ModelVersion.objects.get(pk=version.pk)


def page(name: str, version) -> str:
    return reverse(f"approvals:{name}", args=[version.model.slug, version.number])


def api(version, action: str) -> str:
    return f"/api/v1/models/{version.model.slug}/versions/{version.number}/{action}"


def swap_files(actor, version):
    """Withdraw, replace the model file, resubmit: the attack a reviewer must not miss."""
    workflow.version_withdraw(actor=actor, version=version)
    old = version.artifacts.get(path="model.bin")
    catalogue.artifact_delete(actor=actor, artifact=old)
    catalogue.artifact_add(
        actor=actor, version=version, files=[storage.incoming_from_bytes("model.bin", b"evil")]
    )
    workflow.version_submit(actor=actor, version=version)


def test_submitting_records_the_digest_of_the_canonical_manifest(model, editor):
    v = good_version(model, editor)
    assert fresh(v).content_digest == ""  # drafts have none yet
    workflow.version_submit(actor=editor, version=v)
    recorded = fresh(v).content_digest
    manifest = digest.manifest(fresh(v))
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert recorded == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert manifest["files"] == [
        {"path": "model.bin", "size": 11, "sha256": hashlib.sha256(b"weights-0.9").hexdigest()}
    ]
    assert manifest["metrics"] == [{"name": "auc", "split": "test", "value": 0.9}]
    assert [d["name"] for d in manifest["datasets"]] == ["claims"]
    event = AuditEvent.objects.get(action="version.submitted")
    assert event.after["content_digest"] == recorded


def test_each_judged_part_changes_the_digest(model, editor):
    base = digest.content_digest(good_version(model, editor))
    others = [
        good_version(model, editor, auc=0.91),  # metrics (and so the file)
        good_version(model, editor, params={"lr": "0.1"}),
        good_version(model, editor, requirements="numpy==2.0"),
        good_version(model, editor, signature={"inputs": [{"name": "x", "type": "double"}]}),
    ]
    digests = {digest.content_digest(v) for v in others}
    assert base not in digests and len(digests) == len(others)
    carded = good_version(model, editor)
    before = digest.content_digest(carded)
    catalogue.card_update(actor=editor, version=carded, sections={"caveats": "Only EU data."})
    assert digest.content_digest(carded) != before


def test_a_stale_digest_is_refused_on_the_page_and_records_nothing(
    client_for, model, editor, reviewer
):
    v = good_version(model, editor)
    workflow.version_submit(actor=editor, version=v)
    c = client_for(reviewer)
    opened = c.get(page("review", v)).content.decode()
    seen = fresh(v).content_digest
    assert f'name="content_digest" value="{seen}"' in opened
    swap_files(editor, v)  # while the reviewer has the page open
    for action, data in (("approve", {"reason": "ok"}), ("reject", {"reason": "no"})):
        response = c.post(page(action, v), data | {"content_digest": seen})
        assert response.status_code == 409
        assert "changed since you opened it" in response.content.decode()
    assert not Review.objects.exists()
    assert fresh(v).status == S.IN_REVIEW
    assert not AuditEvent.objects.filter(action__startswith="review.").exists()


def test_a_stale_digest_is_refused_by_the_api(api_client, model, editor, reviewer):
    v = good_version(model, editor)
    workflow.version_submit(actor=editor, version=v)
    client = api_client(reviewer)
    seen = client.get(api(v, "")[:-1]).json()["content_digest"]
    swap_files(editor, v)
    for action, body in (("approve", {}), ("reject", {"reason": "no"})):
        response = client.post(
            api(v, action), json.dumps(body | {"content_digest": seen}), "application/json"
        )
        assert response.status_code == 409, response.content
        assert "changed since you opened it" in response.json()["error"]["message"]
    assert not Review.objects.exists()
    now = client.get(api(v, "")[:-1]).json()["content_digest"]
    assert now != seen
    approved = client.post(
        api(v, "approve"), json.dumps({"content_digest": now}), "application/json"
    )
    assert approved.status_code == 200
    assert approved.json()["review"]["content_digest"] == now


def test_content_changed_behind_the_recorded_digest_is_refused(model, editor, reviewer):
    """Even the digest recorded at submission is checked against the content at decision time
    (a file row altered outside the services cannot be approved)."""
    v = good_version(model, editor)
    workflow.version_submit(actor=editor, version=v)
    seen = fresh(v).content_digest
    v.artifacts.update(sha256="0" * 64)
    with pytest.raises(StaleContent):
        workflow.review_approve(actor=reviewer, version=v, content_digest=seen)
    assert not Review.objects.exists()


def test_a_contributor_may_not_review_what_they_changed(client_for, model, editor, owner):
    """A manager (edit + review) replaces a file of a colleague's draft, the colleague submits:
    the manager may not approve it."""
    v = good_version(model, editor)
    catalogue.artifact_add(
        actor=owner, version=v, files=[storage.incoming_from_bytes("extra.bin", b"x")]
    )
    workflow.version_submit(actor=editor, version=v)
    seen = fresh(v).content_digest
    with pytest.raises(PermissionDenied, match="contributor may not review"):
        workflow.review_approve(actor=owner, version=v, content_digest=seen)
    response = client_for(owner).post(page("approve", v), {"content_digest": seen})
    assert response.status_code == 403
    assert "contributor may not review" in response.content.decode()
    html = client_for(owner).get(page("review", v)).content.decode()
    assert "a contributor may not review it" in html and 'action="' + page("approve", v) not in html
    assert not Review.objects.exists()


@pytest.mark.parametrize("change", ["metadata", "card", "delete a file"])
def test_every_kind_of_content_change_makes_a_contributor(model, editor, owner, change):
    v = good_version(model, editor)
    if change == "metadata":
        state = catalogue.version_state(v) | {"description": "edited"}
        catalogue.version_update(actor=owner, version=v, metadata=parse_metadata(state))
    elif change == "card":
        catalogue.card_update(actor=owner, version=v, sections={"caveats": "EU only."})
    else:
        catalogue.artifact_delete(actor=owner, artifact=v.artifacts.get())
    assert set(v.contributors.values_list("user__username", flat=True)) == {"owner"}
    workflow.version_submit(actor=editor, version=v)
    with pytest.raises(PermissionDenied, match="contributor"):
        workflow.review_reject(actor=owner, version=v, reason="no")


def test_the_digest_is_on_the_version_page_review_page_and_manifest(
    client_for, api_client, model, editor, reviewer
):
    v = good_version(model, editor)
    workflow.version_submit(actor=editor, version=v)
    workflow.review_approve(actor=reviewer, version=v, reason="fine")
    recorded = fresh(v).content_digest
    c = client_for(reviewer)
    assert recorded in c.get(v.get_absolute_url()).content.decode()
    assert recorded in c.get(page("review", v)).content.decode()
    assert Review.objects.get().content_digest == recorded
    decision = c.get(v.get_absolute_url()).content.decode()
    assert f'title="{recorded}"' in decision  # the decisions table names what each covered
    manifest = api_client(reviewer).get(api(v, "manifest")).json()
    assert manifest["content_digest"] == manifest["current_digest"] == recorded


def test_the_digest_reaches_the_resolve_endpoint_and_mlflow(api_client, model, editor, reviewer):
    from approvals.services import alias_set

    v = good_version(model, editor)
    workflow.version_submit(actor=editor, version=v)
    workflow.review_approve(actor=reviewer, version=v)
    owner = model.owner
    alias_set(actor=owner, model=model, name="production", version=fresh(v), note="go")
    recorded = fresh(v).content_digest
    resolved = api_client(owner).get("/api/v1/models/fraud/aliases/production/resolve").json()
    assert resolved["approval"]["content_digest"] == recorded
    assert resolved["version"]["content_digest"] == recorded
    got = api_client(owner).get(
        "/api/2.0/mlflow/model-versions/get", {"name": "fraud", "version": str(v.number)}
    )
    tags = {t["key"]: t["value"] for t in got.json()["model_version"]["tags"]}
    assert tags["registry.content_digest"] == recorded


def test_the_manifest_of_a_private_parent_names_nothing(model, editor, owner):
    hidden = factories.registered_model(factories.user("other"), "secret-model")
    factories.grant(editor, hidden, "view")
    parent = good_version(hidden, hidden.owner)
    child = good_version(model, editor, parents=[{"model": "secret-model", "version": 1}])
    text = json.dumps(digest.manifest(child))
    assert "secret-model" not in text
    assert digest.manifest(child)["parents"] == [
        {"version_id": parent.pk, "relation": child.parent_links.get().relation}
    ]
