"""The MLflow API never signs (docs/signatures.md): where the model's review policy requires
signatures, moving or removing production or staging through it is refused with
PERMISSION_DENIED, pointing at the dashboard page where the move is signed."""

import json

import pytest

from approvals import services as workflow
from approvals.models import Alias, AliasAssignment, ReviewPolicy, Signature
from tests import factories
from tests.approvals.conftest import good_version

pytestmark = pytest.mark.django_db

API = "/api/2.0/mlflow"


@pytest.fixture
def approved(owner, editor, reviewer):
    model = factories.registered_model(owner, "fraud-detector", signatures=True)
    factories.grant(editor, model, "edit")
    factories.grant(reviewer, model, "review")
    version = workflow.version_submit(actor=editor, version=good_version(model, editor))
    workflow.review_approve(
        actor=reviewer, version=version, signature=factories.signing("Reviewed — technical")
    )
    return version


def call(client, path, body, method="post"):
    return client.generic(
        method.upper(), f"{API}{path}", json.dumps(body),
        content_type="application/json",
    )  # fmt: skip


def assert_refused_pointing_at_the_dashboard(response):
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["error_code"] == "PERMISSION_DENIED"
    assert "MLflow API never signs" in body["message"]
    assert "http://testserver/models/fraud-detector/aliases/" in body["message"]


@pytest.mark.parametrize("alias", ["production", "staging", "Production"])
def test_setting_a_protected_alias_is_refused(api_client, owner, approved, alias):
    response = call(
        api_client(owner), "/registered-models/alias",
        {"name": "fraud-detector", "alias": alias, "version": "1"},
    )  # fmt: skip
    assert_refused_pointing_at_the_dashboard(response)
    assert not Alias.objects.exists() and not AliasAssignment.objects.exists()


def test_removing_a_protected_alias_or_moving_it_by_stage_is_refused(api_client, owner, approved):
    workflow.alias_set(
        actor=owner, model=approved.model, name="production", version=approved,
        signature=factories.signing("Released for use under this alias"),
    )  # fmt: skip
    client = api_client(owner)
    removed = call(
        client, "/registered-models/alias",
        {"name": "fraud-detector", "alias": "production"}, method="delete",
    )  # fmt: skip
    assert_refused_pointing_at_the_dashboard(removed)
    for stage in ("Staging", "None"):
        moved = call(
            client, "/model-versions/transition-stage",
            {"name": "fraud-detector", "version": "1", "stage": stage,
             "archive_existing_versions": False},
        )  # fmt: skip
        assert_refused_pointing_at_the_dashboard(moved)
    assert list(Alias.objects.values_list("name", flat=True)) == ["production"]
    assert AliasAssignment.objects.count() == 1 and Signature.objects.count() == 2


def test_other_aliases_keep_working(api_client, owner, approved):
    response = call(
        api_client(owner), "/registered-models/alias",
        {"name": "fraud-detector", "alias": "champion", "version": "1"},
    )  # fmt: skip
    assert response.status_code == 200, response.content
    assert Alias.objects.get().name == "champion"


def test_without_signatures_the_mlflow_api_moves_production_as_before(api_client, owner, approved):
    ReviewPolicy.objects.filter(model=approved.model).update(signatures_required=False)
    response = call(
        api_client(owner), "/registered-models/alias",
        {"name": "fraud-detector", "alias": "production", "version": "1"},
    )  # fmt: skip
    assert response.status_code == 200, response.content
    assert Alias.objects.get().name == "production"
    assert Signature.objects.count() == 1  # the approval's only
