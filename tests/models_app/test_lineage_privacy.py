"""Lineage across tenants (issue 15, findings 2 and 3): a parent version's name reaches only
those who may view it, on every page and API that shows a version's parents or the audit
events that name them; and a parent's owners delete their drafts and models whoever links to
them: the link stays, showing the parent as deleted."""

import itertools
import json

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from audit import chain
from audit.models import AuditEvent
from models_app import services
from models_app.metadata import parse_metadata
from models_app.models import ModelVersion, RegisteredModel, VersionParent
from registry_site.tokens import token_create
from tests import factories
from tests.models_app.test_register import use_local_storage

SECRET = "secret-base"


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    return use_local_storage(settings, tmp_path)


@pytest.fixture
def tenant(db):
    """Another team's owner: their model is private, shared for viewing with ``owner`` only."""
    return factories.user("tenant")


@pytest.fixture
def base(tenant, owner) -> RegisteredModel:
    model = factories.registered_model(tenant, SECRET)
    factories.grant(owner, model, "view")
    factories.version(model, tenant)
    return model


@pytest.fixture
def child_model(owner, viewer) -> RegisteredModel:
    model = factories.registered_model(owner, "child-model")
    factories.grant(viewer, model, "view")
    return model


@pytest.fixture
def child(base, child_model, owner) -> ModelVersion:
    """child-model v1, fine-tuned from secret-base v1 (which ``viewer`` may not view)."""
    parents = [{"model": SECRET, "version": 1, "relation": "fine_tuned"}]
    return factories.version(child_model, owner, parents=parents)


_tokens = itertools.count()


def api(user) -> Client:
    """A client calling the JSON API with a fresh read token of ``user``."""
    _, secret = token_create(actor=user, user=user, name=f"t{next(_tokens)}", scope="read")
    return Client(headers={"Authorization": f"Bearer {secret}"})


def relink(child, owner, relation: str) -> None:
    """Change the parent link's relation: a version.updated event naming the parent."""
    parents = [{"model": SECRET, "version": 1, "relation": relation}]
    services.version_update(
        actor=owner, version=child, metadata=parse_metadata({"parents": parents})
    )


def audit_texts(user) -> dict[str, str]:
    """The audit log as ``user`` reads it: the page, the CSV and the JSON API."""
    c = Client()
    c.force_login(user)
    page = c.get(reverse("approvals:audit")).content.decode()
    csv_body = b"".join(c.get(reverse("approvals:audit_csv")).streaming_content).decode()
    listing = api(user).get("/api/v1/audit?limit=200").json()
    return {"page": page, "csv": csv_body, "api": json.dumps(listing)}


# ---------------------------------------------------------------------------------------------
# Finding 2: names of private parents


def test_the_review_page_names_a_parent_only_to_those_who_may_view_it(
    client_for, child, child_model, owner, viewer
):
    url = reverse("approvals:review", args=[child_model.slug, child.number])
    seen_by_viewer = client_for(viewer).get(url).content.decode()
    assert SECRET not in seen_by_viewer
    assert "hidden version" in seen_by_viewer
    assert f"{SECRET} v1" in client_for(owner).get(url).content.decode()


def test_audit_page_csv_and_api_redact_parents_the_reader_may_not_view(
    child, child_model, owner, viewer, superuser
):
    relink(child, owner, "distilled")
    # An event recorded before parents were stored by id: by name only.
    chain.record(
        actor=owner, action="version.updated", target=child, model=child_model,
        before={"parents": [{"model": SECRET, "version": 1, "relation": "retrained"}]},
        after={"parents": []},
    )  # fmt: skip
    for where, text in audit_texts(viewer).items():
        assert SECRET not in text, where
        assert "a private version" in text, where
    for user in (owner, superuser):
        for where, text in audit_texts(user).items():
            assert SECRET in text, (user, where)


def test_audit_redacts_old_events_naming_a_model_that_is_gone(child, child_model, owner, viewer):
    chain.record(
        actor=owner, action="version.deleted", target=child, model=child_model,
        before={"parents": [{"model": "long-gone", "version": 3, "relation": "retrained"},
                            {"model": "child-model", "version": 1, "relation": "retrained"}]},
    )  # fmt: skip
    texts = audit_texts(viewer)
    for where, text in texts.items():
        assert "long-gone" not in text, where
    assert "child-model" in texts["csv"]  # a parent the reader may view stays named


def test_audit_redaction_takes_one_query_per_page(
    child, child_model, owner, viewer, client_for, assert_constant_queries
):
    relink(child, owner, "distilled")  # parents on the page already: the one query runs
    c = client_for(viewer)

    def get():
        assert c.get(reverse("approvals:audit")).status_code == 200

    def grow():
        with transaction.atomic():
            for i in range(60):
                parents = [{"model": f"m{i}", "version": i, "relation": "retrained"}]
                if i % 2:
                    parents[0]["version_id"] = child.pk + 1000 + i
                chain.record(actor=owner, action="version.updated", target=child,
                             model=child_model, before={"parents": parents})  # fmt: skip

    assert_constant_queries(get, grow)


def test_audit_events_store_parents_by_id_and_name(child, owner):
    relink(child, owner, "distilled")
    event = AuditEvent.objects.get(action="version.updated")
    parent = ModelVersion.objects.get(model__name=SECRET, number=1)
    assert event.after["parents"] == [
        {"version_id": parent.pk, "model": SECRET, "version": 1, "relation": "distilled"}
    ]


# ---------------------------------------------------------------------------------------------
# Finding 3: parent links do not block deletion


def delete_draft(client_for, user, version) -> None:
    url = reverse("models_app:version_delete", args=[version.model.slug, version.number])
    response = client_for(user).post(url)
    assert response.status_code == 302, response.content.decode()[:500]


def test_a_parent_draft_linked_from_another_tenant_can_be_deleted(
    client_for, base, child, child_model, tenant, viewer, owner, superuser
):
    parent = base.versions.get()
    delete_draft(client_for, tenant, parent)
    assert not ModelVersion.objects.filter(pk=parent.pk).exists()
    link = child.parent_links.get()
    assert (link.parent, link.parent_model_name, link.parent_number) == (None, SECRET, 1)

    page = reverse("models_app:version_detail", args=[child_model.slug, child.number])
    review = reverse("approvals:review", args=[child_model.slug, child.number])
    graph = reverse("models_app:version_lineage", args=[child_model.slug, child.number])
    card = reverse("models_app:version_card", args=[child_model.slug, child.number])
    card_md = reverse("models_app:card_markdown", args=[child_model.slug, child.number])
    for user in (viewer, owner):  # the owner could view it; it is gone all the same
        for url in (page, review, graph, card, card_md):
            html = client_for(user).get(url).content.decode()
            assert SECRET not in html, (user, url)
            assert "deleted version" in html, (user, url)
    assert f"{SECRET} v1 (deleted)" in client_for(superuser).get(page).content.decode()

    body = api(viewer).get("/api/v1/models/child-model/versions/1").json()
    assert body["parents"] == [
        {"hidden": False, "deleted": True, "model": None, "version": None,
         "relation": "fine_tuned"}
    ]  # fmt: skip
    lineage = api(viewer).get("/api/v1/models/child-model/versions/1/lineage").json()
    assert lineage["ancestors"] == [
        [{"hidden": False, "deleted": True, "note": "child-model v1 was fine-tuned from it"}]
    ]
    assert SECRET in str(api(superuser).get("/api/v1/models/child-model/versions/1").json())


def test_a_model_whose_versions_are_parents_elsewhere_can_be_deleted(
    client_for, base, child, child_model, tenant, viewer
):
    response = client_for(tenant).post(
        reverse("models_app:model_delete", args=[base.slug]), {"confirm": SECRET}
    )
    assert response.status_code == 302
    assert not RegisteredModel.objects.filter(pk=base.pk).exists()
    assert child.parent_links.get().parent is None
    page = reverse("models_app:version_detail", args=[child_model.slug, child.number])
    html = client_for(viewer).get(page).content.decode()
    assert "a deleted version" in html and SECRET not in html


def test_a_deleted_parent_of_the_same_model_keeps_its_name(client_for, child_model, owner, viewer):
    first = factories.version(child_model, owner)
    second = factories.version(child_model, owner, parents=[{"model": "child-model", "version": 1}])
    delete_draft(client_for, owner, first)
    page = reverse("models_app:version_detail", args=[child_model.slug, second.number])
    assert "child-model v1 (deleted)" in client_for(viewer).get(page).content.decode()
    body = api(viewer).get("/api/v1/models/child-model/versions/2").json()
    assert body["parents"][0] | {"relation": "-"} == {
        "hidden": False, "deleted": True, "model": "child-model", "version": 1, "relation": "-"
    }  # fmt: skip


def test_editing_a_child_keeps_links_to_deleted_and_private_parents(
    client_for, base, child, child_model, owner, tenant
):
    """The edit form lists only parents the editor may view; saving keeps the others."""
    editor_of_child = factories.user("child-editor")
    factories.grant(editor_of_child, child_model, "edit")
    services.version_update(
        actor=editor_of_child, version=child, metadata=parse_metadata({"description": "x"})
    )
    assert child.parent_links.get().parent == base.versions.get()
    delete_draft(client_for, tenant, base.versions.get())
    services.version_update(
        actor=owner, version=child, metadata=parse_metadata({"description": "y"})
    )
    link = VersionParent.objects.get(child=child)
    assert (link.parent, link.parent_model_name) == (None, SECRET)


def test_a_renamed_parent_model_is_kept_under_its_new_name(base, child, tenant):
    services.model_update(actor=tenant, model=base, name="renamed-base")
    assert child.parent_links.get().parent_model_name == "renamed-base"
