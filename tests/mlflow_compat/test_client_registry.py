"""The real MLflow client against a live registry: every registry call, the mapping onto drafts,
approvals and aliases, and the errors the client raises."""

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from approvals.models import Alias
from audit.models import AuditEvent
from models_app.models import ModelTag, ModelVersion, RegisteredModel
from tests import factories
from tests.mlflow_compat.conftest import approve

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:.*is deprecated since 2.9.0:FutureWarning"),
]


def code_of(excinfo) -> str:
    return excinfo.value.error_code


def tags_of(entity) -> dict:
    return dict(entity.tags)


# ---------------------------------------------------------------------------------------------
# Registered models


def test_create_get_update_rename_delete_a_model(as_user, people):
    client = as_user(people["owner"])
    created = client.create_registered_model(
        "churn", tags={"team": "growth"}, description="Who leaves"
    )
    assert created.name == "churn"
    assert created.description == "Who leaves"
    assert created.tags == {"team": "growth"}
    assert isinstance(created.creation_timestamp, int) and created.creation_timestamp > 1e12

    model = RegisteredModel.objects.get(name="churn")
    assert model.owner == people["owner"]
    assert AuditEvent.objects.filter(action="model.created", model=model).exists()

    fetched = client.get_registered_model("churn")
    assert fetched.latest_versions == []

    updated = client.update_registered_model("churn", description="Who cancels")
    assert updated.description == "Who cancels"

    client.rename_registered_model("churn", "churn-v2")
    assert client.get_registered_model("churn-v2").description == "Who cancels"
    with pytest.raises(MlflowException) as missing:
        client.get_registered_model("churn")
    assert code_of(missing) == "RESOURCE_DOES_NOT_EXIST"

    client.delete_registered_model("churn-v2")
    assert not RegisteredModel.objects.filter(name="churn-v2").exists()
    with pytest.raises(MlflowException) as gone:
        client.get_registered_model("churn-v2")
    assert code_of(gone) == "RESOURCE_DOES_NOT_EXIST"


def test_creating_an_existing_model_is_resource_already_exists_and_register_model_carries_on(
    as_user, people, shared_model
):
    client = as_user(people["editor"])
    with pytest.raises(MlflowException) as exists:
        client.create_registered_model("Fraud Detector")  # clashes with fraud-detector
    assert code_of(exists) == "RESOURCE_ALREADY_EXISTS"
    assert "taken" in str(exists.value)
    assert RegisteredModel.objects.count() == 1
    mv = mlflow.register_model("s3://bucket/fraud/7", "fraud-detector")
    assert (mv.name, mv.version, mv.source) == ("fraud-detector", "1", "s3://bucket/fraud/7")


def test_model_tags_are_set_and_deleted_by_managers_and_reserved_ones_refused(
    as_user, people, shared_model
):
    owner = as_user(people["owner"])
    owner.set_registered_model_tag("fraud-detector", "team", "risk")
    assert owner.get_registered_model("fraud-detector").tags == {"team": "risk"}
    owner.delete_registered_model_tag("fraud-detector", "team")
    owner.delete_registered_model_tag("fraud-detector", "never-set")  # a no-op, like stock
    assert owner.get_registered_model("fraud-detector").tags == {}

    with pytest.raises(MlflowException) as reserved:
        owner.set_registered_model_tag("fraud-detector", "registry.status", "approved")
    assert code_of(reserved) == "INVALID_PARAMETER_VALUE"
    assert "kept by the registry" in str(reserved.value)

    editor = as_user(people["editor"])
    with pytest.raises(MlflowException) as denied:
        editor.set_registered_model_tag("fraud-detector", "team", "x")
    assert code_of(denied) == "PERMISSION_DENIED"
    assert "manage role" in str(denied.value)
    assert not ModelTag.objects.exists()


def test_outsiders_get_not_found_exactly_like_a_missing_model(as_user, people, shared_model):
    outsider = as_user(people["outsider"])
    with pytest.raises(MlflowException) as hidden:
        outsider.get_registered_model("fraud-detector")
    with pytest.raises(MlflowException) as missing:
        outsider.get_registered_model("no-such-model")
    assert code_of(hidden) == code_of(missing) == "RESOURCE_DOES_NOT_EXIST"
    assert str(hidden.value) == str(missing.value)
    with pytest.raises(MlflowException) as delete:
        outsider.delete_registered_model("fraud-detector")
    assert code_of(delete) == "RESOURCE_DOES_NOT_EXIST"
    assert outsider.search_registered_models() == []
    assert RegisteredModel.objects.filter(name="fraud-detector").exists()


def test_viewer_cannot_delete_or_rename(as_user, people, shared_model):
    viewer = as_user(people["viewer"])
    assert viewer.get_registered_model("fraud-detector").name == "fraud-detector"
    for call in (
        lambda: viewer.delete_registered_model("fraud-detector"),
        lambda: viewer.rename_registered_model("fraud-detector", "x"),
        lambda: viewer.update_registered_model("fraud-detector", description="x"),
    ):
        with pytest.raises(MlflowException) as denied:
            call()
        assert code_of(denied) == "PERMISSION_DENIED"
    assert RegisteredModel.objects.get().name == "fraud-detector"


def test_search_registered_models_filters_orders_and_pages(as_user, people):
    owner = people["owner"]
    for name, team in (("alpha", "a"), ("beta", "a"), ("Gamma", "b"), ("delta", "b")):
        factories.registered_model(owner, name, tags={"team": team})
    factories.registered_model(people["outsider"], "alpine-hidden")
    client = as_user(owner)

    first = client.search_registered_models(max_results=2)
    assert [m.name for m in first] == ["alpha", "beta"]
    assert first.token
    second = client.search_registered_models(max_results=2, page_token=first.token)
    assert [m.name for m in second] == ["delta", "Gamma"]
    assert not second.token

    assert [m.name for m in client.search_registered_models("name LIKE 'al%'")] == ["alpha"]
    assert [m.name for m in client.search_registered_models("name ILIKE 'g%'")] == ["Gamma"]
    assert [m.name for m in client.search_registered_models("name = 'beta'")] == ["beta"]
    tagged = client.search_registered_models("tags.team = 'b'", order_by=["name DESC"])
    assert [m.name for m in tagged] == ["Gamma", "delta"]
    everything = mlflow.search_registered_models()  # the fluent API follows the page tokens
    assert sorted(m.name for m in everything) == ["Gamma", "alpha", "beta", "delta"]

    with pytest.raises(MlflowException) as bad:
        client.search_registered_models("name = 'a' OR name = 'b'")
    assert code_of(bad) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as bad_key:
        client.search_registered_models("creation_timestamp > 5")
    assert "Invalid attribute key" in str(bad_key.value)
    with pytest.raises(MlflowException) as bad_order:
        client.search_registered_models(order_by=["creation_timestamp"])
    assert code_of(bad_order) == "INVALID_PARAMETER_VALUE"


# ---------------------------------------------------------------------------------------------
# Versions


def test_versions_start_as_drafts_with_the_approval_state_as_a_tag(as_user, people, shared_model):
    client = as_user(people["editor"])
    mv = client.create_model_version(
        "fraud-detector", "s3://bucket/models/fraud/1", tags={"stage": "canary"},
        description="first try", run_id="run-42",
    )  # fmt: skip
    assert mv.version == "1"
    assert mv.status == "READY"
    assert mv.current_stage == "None"
    assert mv.source == "s3://bucket/models/fraud/1"
    assert mv.run_id == "run-42"
    assert mv.user_id == "editor"
    assert mv.tags["registry.status"] == "draft"
    assert mv.tags["stage"] == "canary"
    version = ModelVersion.objects.get()
    assert version.status == ModelVersion.Status.DRAFT
    assert version.source_run == "run-42"
    assert not version.artifacts.exists()  # an external source: recorded, not fetched

    fetched = client.get_model_version("fraud-detector", "1")
    assert fetched.description == "first try"
    assert client.get_model_version_download_uri("fraud-detector", "1") == (
        "s3://bucket/models/fraud/1"
    )

    client.update_model_version("fraud-detector", "1", description="second thoughts")
    client.set_model_version_tag("fraud-detector", "1", "owner", "risk-team")
    client.delete_model_version_tag("fraud-detector", "1", "stage")
    client.delete_model_version_tag("fraud-detector", "1", "never-set")
    again = client.get_model_version("fraud-detector", "1")
    assert again.description == "second thoughts"
    assert again.tags == {
        "owner": "risk-team",
        "registry.source": "s3://bucket/models/fraud/1",
        "registry.source_verified": "false",  # the registry never saw these files
        "registry.status": "draft",
    }


def test_submitted_versions_are_frozen_and_cannot_be_deleted(as_user, people, shared_model):
    from approvals import services as approvals

    client = as_user(people["editor"])
    client.create_model_version("fraud-detector", "s3://bucket/m/1", description="v1")
    approvals.version_submit(actor=people["editor"], version=ModelVersion.objects.get())
    assert client.get_model_version("fraud-detector", "1").tags["registry.status"] == "in_review"

    with pytest.raises(MlflowException) as frozen:
        client.update_model_version("fraud-detector", "1", description="sneaky")
    assert code_of(frozen) == "INVALID_STATE"
    assert "in review" in str(frozen.value) and "frozen" in str(frozen.value)
    with pytest.raises(MlflowException) as tag:
        client.set_model_version_tag("fraud-detector", "1", "k", "v")
    assert code_of(tag) == "INVALID_STATE"
    with pytest.raises(MlflowException) as delete:
        client.delete_model_version("fraud-detector", "1")
    assert code_of(delete) == "INVALID_STATE"
    assert "only drafts can be deleted" in str(delete.value)
    version = ModelVersion.objects.get()
    assert version.description == "v1"
    assert not version.tags.filter(key="k").exists()


def test_deleting_a_draft_removes_its_aliases_and_never_reuses_its_number(
    as_user, people, shared_model
):
    client = as_user(people["editor"])
    client.create_model_version("fraud-detector", "s3://bucket/m/1")
    client.set_registered_model_alias("fraud-detector", "Champion", "1")
    assert client.get_model_version_by_alias("fraud-detector", "champion").version == "1"
    client.delete_model_version("fraud-detector", "1")
    assert not Alias.objects.exists()
    assert client.create_model_version("fraud-detector", "s3://bucket/m/2").version == "2"
    with pytest.raises(MlflowException) as gone:
        client.get_model_version("fraud-detector", "1")
    assert code_of(gone) == "RESOURCE_DOES_NOT_EXIST"


def test_viewer_cannot_register_and_outsider_sees_nothing(as_user, people, shared_model):
    with pytest.raises(MlflowException) as denied:
        as_user(people["viewer"]).create_model_version("fraud-detector", "s3://b/m")
    assert code_of(denied) == "PERMISSION_DENIED"
    assert "edit role" in str(denied.value)
    with pytest.raises(MlflowException) as hidden:
        as_user(people["outsider"]).create_model_version("fraud-detector", "s3://b/m")
    assert code_of(hidden) == "RESOURCE_DOES_NOT_EXIST"
    assert not ModelVersion.objects.exists()


def test_search_model_versions_filters_and_orders(as_user, people, shared_model):
    editor = people["editor"]
    for i in range(1, 4):
        factories.version(shared_model, editor, tags={"kind": "even" if i % 2 == 0 else "odd"})
    other = factories.registered_model(people["outsider"], "hidden-model")
    factories.version(other, people["outsider"])
    client = as_user(editor)

    every = client.search_model_versions()
    assert [(v.name, v.version) for v in every] == [
        ("fraud-detector", "3"), ("fraud-detector", "2"), ("fraud-detector", "1")
    ]  # fmt: skip
    numbers = client.search_model_versions(
        "name = 'fraud-detector' AND version_number >= 2", order_by=["version_number ASC"]
    )
    assert [v.version for v in numbers] == ["2", "3"]
    assert [v.version for v in client.search_model_versions("tags.kind = 'odd'")] == ["3", "1"]
    approved = client.search_model_versions("tags.`registry.status` = 'approved'")
    assert list(approved) == []
    paged = client.search_model_versions(max_results=2)
    assert len(paged) == 2 and paged.token
    rest = client.search_model_versions(max_results=2, page_token=paged.token)
    assert [v.version for v in rest] == ["1"]
    with pytest.raises(MlflowException) as bad:
        client.search_model_versions("version_number = 'abc'")
    assert code_of(bad) == "INVALID_PARAMETER_VALUE"


# ---------------------------------------------------------------------------------------------
# Aliases and stages: protected ones go through the approval workflow


def test_protected_alias_needs_an_approved_version_and_the_promote_role(
    as_user, people, lenient_policy
):
    as_user(people["editor"]).create_model_version("fraud-detector", "s3://bucket/m/1")

    with pytest.raises(MlflowException) as draft:
        as_user(people["promoter"]).set_registered_model_alias("fraud-detector", "production", "1")
    assert code_of(draft) == "INVALID_STATE"
    assert "Only approved versions may become production" in str(draft.value)

    approve(ModelVersion.objects.get(), editor=people["editor"], reviewer=people["reviewer"])
    with pytest.raises(MlflowException) as no_role:
        as_user(people["editor"]).set_registered_model_alias("fraud-detector", "production", "1")
    assert code_of(no_role) == "PERMISSION_DENIED"
    assert "promote role" in str(no_role.value)
    assert not Alias.objects.exists()

    promoter = as_user(people["promoter"])
    promoter.set_registered_model_alias("fraud-detector", "production", "1")
    promoter.set_registered_model_alias("fraud-detector", "production", "1")  # a no-op again
    mv = promoter.get_model_version_by_alias("fraud-detector", "production")
    assert mv.version == "1"
    assert mv.current_stage == "Production"
    assert mv.aliases == ["production"]
    assert mv.tags["registry.status"] == "approved"
    model = promoter.get_registered_model("fraud-detector")
    assert model.aliases == {"production": "1"}
    assert [(v.version, v.current_stage) for v in model.latest_versions] == [("1", "Production")]

    with pytest.raises(MlflowException) as editor_delete:
        as_user(people["editor"]).delete_registered_model_alias("fraud-detector", "production")
    assert code_of(editor_delete) == "PERMISSION_DENIED"
    assert Alias.objects.filter(name="production").exists()
    promoter = as_user(people["promoter"])
    promoter.delete_registered_model_alias("fraud-detector", "production")
    promoter.delete_registered_model_alias("fraud-detector", "production")  # missing: fine
    assert not Alias.objects.exists()


def test_alias_lookup_errors_and_reserved_names(as_user, people, shared_model):
    client = as_user(people["editor"])
    client.create_model_version("fraud-detector", "s3://bucket/m/1")
    client.create_model_version("fraud-detector", "s3://bucket/m/2")
    assert client.get_model_version_by_alias("fraud-detector", "latest").version == "2"
    with pytest.raises(MlflowException) as missing:
        client.get_model_version_by_alias("fraud-detector", "champion")
    assert code_of(missing) == "INVALID_PARAMETER_VALUE"
    assert "champion not found" in str(missing.value)
    for reserved in ("latest", "v1", "V12"):
        with pytest.raises(MlflowException) as refused:
            client.set_registered_model_alias("fraud-detector", reserved, "1")
        assert code_of(refused) == "INVALID_PARAMETER_VALUE"
        assert "reserved" in str(refused.value)
    with pytest.raises(MlflowException) as no_version:
        client.set_registered_model_alias("fraud-detector", "champion", "9")
    assert code_of(no_version) == "RESOURCE_DOES_NOT_EXIST"
    assert not Alias.objects.exists()


def test_stage_transitions_map_onto_aliases_and_archiving(as_user, people, lenient_policy):
    editor = as_user(people["editor"])
    for i in (1, 2):
        editor.create_model_version("fraud-detector", f"s3://bucket/m/{i}")
        approve(
            ModelVersion.objects.get(number=i), editor=people["editor"], reviewer=people["reviewer"]
        )
    promoter = as_user(people["promoter"])
    mv = promoter.transition_model_version_stage("fraud-detector", "1", "production")
    assert mv.current_stage == "Production"
    assert Alias.objects.get(name="production").version.number == 1

    mv = promoter.transition_model_version_stage("fraud-detector", "2", "Production")
    assert mv.current_stage == "Production"
    latest = {v.current_stage: v.version for v in promoter.get_latest_versions("fraud-detector")}
    assert latest == {"None": "1", "Production": "2"}
    assert [v.version for v in promoter.get_latest_versions("fraud-detector", ["Production"])] == [
        "2"
    ]

    with pytest.raises(MlflowException) as no_manage:
        promoter.transition_model_version_stage("fraud-detector", "1", "Archived")
    assert code_of(no_manage) == "PERMISSION_DENIED"
    owner = as_user(people["owner"])
    assert owner.transition_model_version_stage(
        "fraud-detector", "1", "Archived"
    ).current_stage == ("Archived")
    with pytest.raises(MlflowException) as holds:
        owner.transition_model_version_stage("fraud-detector", "2", "Archived")
    assert code_of(holds) == "INVALID_STATE"
    assert "holds production" in str(holds.value)
    assert owner.transition_model_version_stage("fraud-detector", "2", "None").current_stage == (
        "None"
    )
    assert not Alias.objects.exists()
    with pytest.raises(MlflowException) as bad_stage:
        owner.transition_model_version_stage("fraud-detector", "2", "Prod")
    assert code_of(bad_stage) == "INVALID_PARAMETER_VALUE"


def test_archive_existing_versions_archives_the_previous_holder(as_user, people, lenient_policy):
    editor = as_user(people["editor"])
    for i in (1, 2):
        editor.create_model_version("fraud-detector", f"s3://bucket/m/{i}")
        approve(
            ModelVersion.objects.get(number=i), editor=people["editor"], reviewer=people["reviewer"]
        )
    owner = as_user(people["owner"])
    owner.transition_model_version_stage("fraud-detector", "1", "Staging")
    owner.transition_model_version_stage(
        "fraud-detector", "2", "Staging", archive_existing_versions=True
    )
    assert ModelVersion.objects.get(number=1).status == ModelVersion.Status.ARCHIVED
    assert Alias.objects.get(name="staging").version.number == 2
