"""Datasets have owners, and a name is no way in (issue 15, finding 7): a version naming a
known dataset with another URI or digest is refused, only the dataset's owner (who registered
it, its team, superusers) may complete or correct its record. And the numbered transaction
stays short whatever the datasets (finding 6)."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from core.errors import Conflict
from models_app import services
from models_app.metadata import parse_metadata
from models_app.models import Dataset, ModelVersion
from tests import factories
from tests.models_app.test_register import errors_in, use_local_storage, version_data

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    return use_local_storage(settings, tmp_path)


@pytest.fixture
def model(owner, editor):
    model = factories.registered_model(owner, "fraud")
    factories.grant(editor, model, "edit")
    return model


@pytest.fixture
def squatted(outsider):
    """'claims' registered first by someone else, pointing at their own data."""
    return services.dataset_create(
        actor=outsider, name="claims", uri="s3://evil/claims", digest="sha256:evil"
    )


def register(model, actor, **dataset):
    return factories.version(model, actor, datasets=[{"name": "claims", **dataset}])


def edit(dataset, actor, **changes):
    fields = {
        "uri": dataset.uri, "digest": dataset.digest, "description": dataset.description,
        "team": dataset.team,
    } | changes  # fmt: skip
    return services.dataset_update(actor=actor, dataset=dataset, **fields)


# ---------------------------------------------------------------------------------------------
# Naming a known dataset


@pytest.mark.parametrize(
    ("field", "label", "given", "recorded"),
    [("uri", "URI", "s3://real/claims", "s3://evil/claims"),
     ("digest", "digest", "sha256:real", "sha256:evil")],
)  # fmt: skip
def test_a_version_naming_a_known_dataset_with_other_data_is_refused(
    model, editor, squatted, field, label, given, recorded
):
    with pytest.raises(ValidationError) as refused:
        register(model, editor, **{field: given})
    (message,) = refused.value.message_dict[f"datasets[0].{field}"]
    assert f"Dataset 'claims' is registered with {label} '{recorded}', not '{given}'" in message
    assert "register your data under another name" in message
    assert "ask the dataset's owner" in message
    assert not ModelVersion.objects.exists()
    squatted.refresh_from_db()
    assert (squatted.uri, squatted.digest) == ("s3://evil/claims", "sha256:evil")


def test_a_known_dataset_named_with_its_recorded_values_or_none_is_linked(model, editor, squatted):
    first = register(model, editor, uri="s3://evil/claims", digest="sha256:evil")
    second = register(model, editor)
    assert first.dataset_links.get().dataset == squatted
    assert second.dataset_links.get().dataset == squatted
    assert Dataset.objects.count() == 1


def test_a_draft_edit_naming_a_known_dataset_with_other_data_is_refused(model, editor, squatted):
    version = factories.version(model, editor)
    metadata = services.version_state(version) | {
        "datasets": [{"name": "claims", "uri": "s3://real/claims"}]
    }
    with pytest.raises(ValidationError, match="registered with URI"):
        services.version_update(actor=editor, version=version, metadata=parse_metadata(metadata))
    assert not version.dataset_links.exists()


def test_the_same_dataset_given_two_uris_in_one_version_is_refused(model, editor):
    with pytest.raises(ValidationError) as refused:
        factories.version(
            model, editor,
            datasets=[{"name": "claims", "role": "train", "uri": "s3://a"},
                      {"name": "claims", "role": "test", "uri": "s3://b"}],
        )  # fmt: skip
    assert "given two URIs" in refused.value.message_dict["datasets[1].uri"][0]
    assert not Dataset.objects.exists()


def test_only_the_owner_may_fill_in_an_empty_uri_through_a_version(model, owner, editor):
    dataset = services.dataset_create(actor=owner, name="claims")
    with pytest.raises(ValidationError) as refused:
        register(model, editor, uri="s3://real/claims")
    (message,) = refused.value.message_dict["datasets[0].uri"]
    assert "has no URI recorded; only its owner (owner) may add one" in message
    dataset.refresh_from_db()
    assert dataset.uri == ""

    version = register(model, owner, uri="s3://real/claims")
    dataset.refresh_from_db()
    assert dataset.uri == "s3://real/claims"
    assert version.dataset_links.get().dataset == dataset
    event = AuditEvent.objects.get(action="dataset.updated")
    assert (event.before, event.after) == ({"uri": ""}, {"uri": "s3://real/claims"})


def test_a_member_of_the_datasets_team_may_fill_it_in(model, owner, editor):
    team = factories.team("data", owner, editor)
    dataset = services.dataset_create(actor=owner, name="claims", team=team)
    register(model, editor, digest="sha256:real")
    dataset.refresh_from_db()
    assert dataset.digest == "sha256:real"


# ---------------------------------------------------------------------------------------------
# Correcting a dataset


def test_the_owner_corrects_a_dataset_with_an_audit_event(owner):
    team = factories.team("data", owner)
    dataset = services.dataset_create(actor=owner, name="claims", uri="s3://typo")
    edit(dataset, owner, uri="s3://data/claims", description="Claims, 2025", team=team)
    dataset.refresh_from_db()
    assert (dataset.uri, dataset.description, dataset.team) == (
        "s3://data/claims", "Claims, 2025", team,
    )  # fmt: skip
    event = AuditEvent.objects.get(action="dataset.updated")
    assert event.before == {"uri": "s3://typo", "description": "", "team": None}
    assert event.after == {"uri": "s3://data/claims", "description": "Claims, 2025",
                           "team": "data"}  # fmt: skip


def test_team_members_and_superusers_may_correct_others_may_not(owner, editor, viewer, superuser):
    team = factories.team("data", owner, editor)
    dataset = services.dataset_create(actor=owner, name="claims", team=team)
    edit(dataset, editor, uri="s3://by-editor")
    edit(dataset, superuser, uri="s3://by-root")
    with pytest.raises(PermissionDenied, match="Only the owner of dataset claims"):
        edit(dataset, viewer, uri="s3://by-viewer")
    dataset.refresh_from_db()
    assert dataset.uri == "s3://by-root"
    assert AuditEvent.objects.filter(action="dataset.updated").count() == 2


def test_a_dataset_is_given_only_to_a_team_its_editor_belongs_to(owner):
    stranger_team = factories.team("strangers")
    dataset = services.dataset_create(actor=owner, name="claims")
    with pytest.raises(ValidationError, match="not a member of team 'strangers'"):
        edit(dataset, owner, team=stranger_team)
    dataset.refresh_from_db()
    assert dataset.team is None


def test_reviewed_data_cannot_be_rewritten_only_completed(model, owner):
    dataset = services.dataset_create(actor=owner, name="claims", uri="s3://data/claims")
    version = register(model, owner)
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.APPROVED)
    with pytest.raises(Conflict, match=r"versions beyond draft \(fraud v1\) were reviewed"):
        edit(dataset, owner, uri="s3://data/other")
    edit(dataset, owner, digest="sha256:abc", description="now documented")
    dataset.refresh_from_db()
    assert (dataset.uri, dataset.digest) == ("s3://data/claims", "sha256:abc")


def test_a_dataset_of_drafts_only_may_be_rewritten(model, owner):
    dataset = services.dataset_create(actor=owner, name="claims", uri="s3://typo")
    register(model, owner)
    edit(dataset, owner, uri="s3://data/claims")
    dataset.refresh_from_db()
    assert dataset.uri == "s3://data/claims"


# ---------------------------------------------------------------------------------------------
# The numbered transaction (finding 6)


def _statements_while_locked(model, actor, datasets) -> list[str]:
    """The statements from the one that takes the lock others wait for until the end: on
    SQLite the transaction's BEGIN (the whole database), elsewhere the number's UPDATE (the
    model's row)."""
    metadata_datasets = [{"name": n, "uri": f"s3://d/{n}"} for n in datasets]
    with CaptureQueriesContext(connection) as ctx:
        factories.version(model, actor, datasets=metadata_datasets)
    sqls = [q["sql"] for q in ctx.captured_queries]
    if connection.vendor == "sqlite":
        start = next(i for i, s in enumerate(sqls) if s.startswith("BEGIN"))
    else:
        start = next(i for i, s in enumerate(sqls) if "next_version_number" in s)
    return sqls[start:]


@pytest.mark.django_db(transaction=True)
def test_the_lock_is_held_for_a_few_statements_whatever_the_datasets(owner):
    model = factories.registered_model(owner, "fraud")
    for i in range(50):
        services.dataset_create(actor=owner, name=f"known-{i}", uri=f"s3://d/known-{i}")
    one = _statements_while_locked(model, owner, ["new-0"])
    fifty_new = _statements_while_locked(model, owner, [f"new-{i}" for i in range(1, 51)])
    fifty_known = _statements_while_locked(model, owner, [f"known-{i}" for i in range(50)])
    assert len(fifty_new) == len(one) <= 10
    assert len(fifty_known) <= len(one)
    # Lookups of datasets and parents happen before: while locked, datasets are only written
    # (and the new ones read back once).
    assert sum("models_app_dataset" in s for s in fifty_known) == 0
    assert Dataset.objects.count() == 101


# ---------------------------------------------------------------------------------------------
# Dashboard


def test_the_register_form_refuses_a_squatted_name_next_to_the_row(
    client_for, editor, model, squatted
):
    data = version_data(
        datasets=[{"name": "claims", "role": "train", "uri": "s3://real/claims", "digest": ""}]
    )
    response = client_for(editor).post(
        reverse("models_app:version_create", args=[model.slug]), data
    )
    assert response.status_code == 400
    assert "Dataset 'claims' is registered with URI 's3://evil/claims'" in errors_in(response)
    assert not ModelVersion.objects.exists()


def edit_url(dataset) -> str:
    return reverse("models_app:dataset_edit", args=[dataset.pk])


def test_the_owner_edits_a_dataset_from_its_page(client_for, owner):
    dataset = services.dataset_create(actor=owner, name="claims", uri="s3://typo")
    c = client_for(owner)
    page = c.get(dataset.get_absolute_url()).content.decode()
    assert f'href="{edit_url(dataset)}"' in page
    assert 'value="s3://typo"' in c.get(edit_url(dataset)).content.decode()
    response = c.post(edit_url(dataset), {"uri": "s3://data/claims", "digest": "",
                                          "description": "Fixed", "team": ""})  # fmt: skip
    assert response.status_code == 302 and response["Location"] == dataset.get_absolute_url()
    dataset.refresh_from_db()
    assert (dataset.uri, dataset.description) == ("s3://data/claims", "Fixed")


def test_others_see_no_edit_link_and_get_403(client_for, owner, viewer):
    dataset = services.dataset_create(actor=owner, name="claims", uri="s3://data/claims")
    c = client_for(viewer)
    assert edit_url(dataset) not in c.get(dataset.get_absolute_url()).content.decode()
    assert c.get(edit_url(dataset)).status_code == 403
    response = c.post(edit_url(dataset), {"uri": "s3://evil", "digest": "", "description": ""})
    assert response.status_code == 403
    dataset.refresh_from_db()
    assert dataset.uri == "s3://data/claims"


def test_the_edit_form_explains_a_refused_rewrite(client_for, owner, model):
    dataset = services.dataset_create(actor=owner, name="claims", uri="s3://data/claims")
    version = register(model, owner)
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.IN_REVIEW)
    response = client_for(owner).post(
        edit_url(dataset), {"uri": "s3://other", "digest": "", "description": "", "team": ""}
    )
    assert response.status_code == 409
    assert "were reviewed against the recorded value" in response.content.decode()
    dataset.refresh_from_db()
    assert dataset.uri == "s3://data/claims"


def test_the_edit_form_offers_only_the_editors_teams(client_for, owner):
    factories.team("data", owner)
    factories.team("strangers")
    dataset = services.dataset_create(actor=owner, name="claims")
    html = client_for(owner).get(edit_url(dataset)).content.decode()
    assert ">data</option>" in html and "strangers" not in html
