"""A deleted or renamed model's name stays reserved (issue 15, finding 19): nobody else gets it
on any surface, so ``name@alias`` never resolves to a newcomer's model, until an administrator
releases it (audited)."""

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from approvals.models import Alias
from audit.models import AuditEvent
from models_app import services
from models_app.models import RegisteredModel, ReservedName
from registry_site.tokens import token_create
from tests import factories
from tests.api.conftest import error_of, send
from tests.models_app.test_model_settings import model_data
from tests.models_app.test_register import use_local_storage

pytestmark = pytest.mark.django_db

MLFLOW = "/api/2.0/mlflow/registered-models"
RESERVED = "is reserved: a model of that name was"


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    use_local_storage(settings, tmp_path)


@pytest.fixture
def deleted(owner) -> RegisteredModel:
    """A model "fraud" with an alias, deleted by its owner."""
    model = factories.registered_model(owner, "fraud")
    Alias.objects.create(model=model, name="champion", version=factories.version(model, owner))
    services.model_delete(actor=owner, model=model, reason="retired")
    return model


@pytest.fixture
def renamed(owner) -> RegisteredModel:
    """A model first named "fraud", now "fraud-v2"."""
    model = factories.registered_model(owner, "fraud")
    return services.model_update(actor=owner, model=model, name="fraud-v2")


@pytest.fixture
def api_client():
    """api_client(user): a client sending a fresh write token of the user."""

    made = iter(range(1000))

    def make(user) -> Client:
        name = f"test-{next(made)}"
        _, secret = token_create(actor=user, user=user, name=name, scope="write")
        return Client(headers={"Authorization": f"Bearer {secret}"})

    return make


def signed_in(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_deleting_and_renaming_reserve_the_old_name(owner, deleted):
    reserved = ReservedName.objects.get()
    assert (reserved.name, reserved.name_key, reserved.why) == ("fraud", "fraud", "deleted")
    assert (reserved.model_id, reserved.reserved_by) == (deleted.pk, owner)
    model = factories.registered_model(owner, "churn")
    services.model_update(actor=owner, model=model, name="Churn Predictor")
    renamed = ReservedName.objects.get(name="churn")
    assert (renamed.why, renamed.model_id) == ("renamed", model.pk)


def test_dashboard_refuses_a_deleted_models_name_and_its_look_alikes(viewer, deleted):
    c = signed_in(viewer)
    for name in ("fraud", "FRAUD", "frаud"):  # the last one with a Cyrillic а
        response = c.post("/models/new/", model_data(name))
        assert response.status_code == 400
        assert RESERVED in response.content.decode().replace("&#x27;", "'")
        assert "deleted" in response.content.decode()
    assert not RegisteredModel.objects.exists()


def test_dashboard_refuses_renaming_onto_a_renamed_models_old_name(owner, renamed):
    other = factories.registered_model(owner, "other")
    url = reverse("models_app:model_edit", args=[other.slug])
    response = signed_in(owner).post(url, model_data("fraud"))
    assert response.status_code == 400
    assert "renamed" in response.content.decode()
    other.refresh_from_db()
    assert other.name == "other"


def test_a_model_may_take_back_its_own_former_name(owner, renamed):
    url = reverse("models_app:model_edit", args=[renamed.slug])
    response = signed_in(owner).post(url, model_data("fraud"))
    assert response.status_code == 302
    renamed.refresh_from_db()
    assert renamed.name == "fraud"
    # Its reservation ended, and the name it leaves is reserved in turn.
    assert list(ReservedName.objects.values_list("name", "model_id")) == [("fraud-v2", renamed.pk)]


def test_json_api_answers_409_for_a_reserved_name(api_client, owner, viewer, deleted):
    response = send(api_client(viewer), "post", "/api/v1/models", {"name": "Fraud"})
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "name_reserved" and error["field"] == "name"
    assert RESERVED in error["message"] and "administrator may release" in error["message"]

    other = factories.registered_model(owner, "other")
    renamed = send(api_client(owner), "patch", "/api/v1/models/other", {"name": "fraud"})
    assert renamed.status_code == 409
    other.refresh_from_db()
    assert other.name == "other"
    assert RegisteredModel.objects.count() == 1


def test_json_api_delete_reserves_the_name(api_client, owner):
    factories.registered_model(owner, "fraud")
    assert api_client(owner).delete("/api/v1/models/fraud").status_code == 204
    again = send(api_client(owner), "post", "/api/v1/models", {"name": "fraud"})
    assert again.status_code == 409


def test_mlflow_refuses_a_deleted_or_renamed_name_like_an_existing_one(owner, viewer):
    c = signed_in(owner)
    assert send(c, "post", f"{MLFLOW}/create", {"name": "fraud"}).status_code == 200
    assert send(c, "delete", f"{MLFLOW}/delete", {"name": "fraud"}).status_code == 200
    response = send(signed_in(viewer), "post", f"{MLFLOW}/create", {"name": "fraud"})
    assert response.status_code == 400
    assert response.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert RESERVED in response.json()["message"]

    assert send(c, "post", f"{MLFLOW}/create", {"name": "churn"}).status_code == 200
    moved = send(c, "post", f"{MLFLOW}/rename", {"name": "churn", "new_name": "churn-v2"})
    assert moved.status_code == 200
    for body in ({"name": "churn"}, {"name": "x"}):
        send(c, "post", f"{MLFLOW}/create", body)
    onto = send(c, "post", f"{MLFLOW}/rename", {"name": "x", "new_name": "churn"})
    assert onto.status_code == 400
    assert onto.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert "renamed" in onto.json()["message"]
    assert set(RegisteredModel.objects.values_list("name", flat=True)) == {"churn-v2", "x"}


def test_resolving_a_deleted_models_alias_stays_404(api_client, owner, viewer, deleted):
    assert send(api_client(viewer), "post", "/api/v1/models", {"name": "fraud"}).status_code == 409
    response = api_client(viewer).get("/api/v1/models/fraud/aliases/champion/resolve")
    assert response.status_code == 404


def test_superuser_releases_a_name_in_the_admin_then_it_is_free(superuser, owner, viewer, deleted):
    reserved = ReservedName.objects.get()
    url = reverse("admin:models_app_reservedname_delete", args=[reserved.pk])
    assert (
        signed_in(superuser).get(reverse("admin:models_app_reservedname_changelist")).status_code
        == 200
    )
    response = signed_in(superuser).post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not ReservedName.objects.exists()
    event = AuditEvent.objects.get(action="name.released")
    assert event.actor == superuser
    assert event.before["name"] == "fraud" and event.before["why"] == "deleted"
    model = factories.registered_model(viewer, "fraud")
    assert model.name == "fraud"


def test_staff_who_are_not_superusers_cannot_release_names(owner, deleted):
    staff = factories.user("staff", is_staff=True)
    reserved = ReservedName.objects.get()
    url = reverse("admin:models_app_reservedname_delete", args=[reserved.pk])
    assert signed_in(staff).post(url, {"post": "yes"}).status_code in (302, 403)
    assert ReservedName.objects.exists()
    assert not AuditEvent.objects.filter(action="name.released").exists()


def test_release_name_command_releases_and_audits(superuser, deleted, capsys):
    call_command("release_name", "FRAUD", "--by", superuser.username)
    assert "Released 'fraud'" in capsys.readouterr().out
    assert not ReservedName.objects.exists()
    assert AuditEvent.objects.get(action="name.released").actor == superuser
