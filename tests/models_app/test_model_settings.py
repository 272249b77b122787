"""Creating, editing and deleting registered models through the web pages."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from models_app.access import Role, roles_for
from models_app.models import MetricSpec, ModelVersion, RegisteredModel
from tests import factories
from tests.models_app.test_register import errors_in, stored_keys, use_local_storage

pytestmark = pytest.mark.django_db

CREATE = "/models/new/"


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    use_local_storage(settings, tmp_path)


def model_data(name="Fraud", *, tags=(), directions=(), **fields) -> dict:
    data = {
        "name": name,
        "description": "",
        "task": "classification",
        "visibility": "private",
        "team": "",
        "tags-TOTAL_FORMS": str(len(tags)),
        "tags-INITIAL_FORMS": "0",
        "directions-TOTAL_FORMS": str(len(directions)),
        "directions-INITIAL_FORMS": "0",
        **fields,
    }
    for i, (key, value) in enumerate(tags):
        data |= {f"tags-{i}-key": key, f"tags-{i}-value": value}
    for i, (metric, direction) in enumerate(directions):
        data |= {f"directions-{i}-metric": metric, f"directions-{i}-direction": direction}
    return data


def test_create_url_is_the_routed_one():
    assert reverse("models_app:model_create") == CREATE


def test_any_signed_in_user_creates_a_model_and_manages_it(client_for, viewer):
    team = factories.team("risk", viewer)
    c = client_for(viewer)
    assert c.get(CREATE).status_code == 200
    data = model_data(
        "Fraud Detector",
        description="Flags **payments**.",
        visibility="internal",
        team=str(team.pk),
        tags=[("domain", "payments")],
        directions=[("recall_at_1pct", "higher"), ("cost", "lower")],
    )
    response = c.post(CREATE, data)
    model = RegisteredModel.objects.get()
    assert response.status_code == 302
    assert response["Location"] == model.get_absolute_url()
    assert (model.name, model.slug, model.team, model.owner) == (
        "Fraud Detector",
        "fraud-detector",
        team,
        viewer,
    )
    assert roles_for(viewer, model) == set(Role)
    assert dict(model.tags.values_list("key", "value")) == {"domain": "payments"}
    assert dict(MetricSpec.objects.values_list("name", "higher_is_better")) == {
        "recall_at_1pct": True,
        "cost": False,
    }


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "This field is required."),
        ("   ", "This field is required."),
        ("x" * 101, "at most 100 characters"),
        ("bad/name", "Use letters, digits"),
        ("zero\u200bwidth", "invisible characters"),
    ],
)
def test_bad_model_names_are_refused(client_for, viewer, name, message):
    response = client_for(viewer).post(CREATE, model_data(name))
    assert response.status_code == 400
    assert message in errors_in(response)
    assert not RegisteredModel.objects.exists()


@pytest.mark.parametrize("clash", ["Fraud", "fraud", "ｆｒａｕｄ", "frаud", "FRAUD "])
def test_a_name_like_an_existing_one_is_taken(client_for, owner, viewer, clash):
    factories.registered_model(owner, "Fraud")
    response = client_for(viewer).post(CREATE, model_data(clash))
    assert response.status_code == 400
    assert "is taken" in errors_in(response)
    assert RegisteredModel.objects.count() == 1


def test_a_hidden_model_name_is_taken_too(client_for, owner, viewer):
    factories.registered_model(owner, "secret")  # private: the viewer cannot see it
    response = client_for(viewer).post(CREATE, model_data("Secret"))
    assert "is taken" in errors_in(response)


def test_team_choices_are_the_users_own_teams(client_for, viewer, superuser):
    mine = factories.team("mine", viewer)
    other = factories.team("other")
    page = client_for(viewer).get(CREATE).content.decode()
    assert ">mine<" in page and ">other<" not in page
    response = client_for(viewer).post(CREATE, model_data(team=str(other.pk)))
    assert response.status_code == 400
    assert "Select a valid choice" in errors_in(response)
    assert not RegisteredModel.objects.exists()
    assert ">other<" in client_for(superuser).get(CREATE).content.decode()
    assert client_for(viewer).post(CREATE, model_data(team=str(mine.pk))).status_code == 302


def test_duplicate_tag_keys_are_refused(client_for, viewer):
    data = model_data(tags=[("domain", "a"), ("domain", "b")])
    response = client_for(viewer).post(CREATE, data)
    assert response.status_code == 400
    assert "domain appears twice" in errors_in(response)
    assert not RegisteredModel.objects.exists()


# ---------------------------------------------------------------------------------------------
# Editing


@pytest.fixture
def model(owner, editor, viewer):
    model = factories.registered_model(owner, "fraud", tags={"domain": "payments"})
    factories.grant(editor, model, "edit")
    factories.grant(viewer, model, "view")
    return model


def edit_url(model) -> str:
    return reverse("models_app:model_edit", args=[model.slug])


def test_manager_edits_settings_tags_and_directions(client_for, owner, model):
    page = client_for(owner).get(edit_url(model)).content.decode()
    assert 'value="fraud"' in page and 'value="payments"' in page
    data = model_data(
        "Fraud v2",
        visibility="internal",
        tags=[("domain", "cards")],
        directions=[("latency_ms", "lower")],
    )
    response = client_for(owner).post(edit_url(model), data)
    assert response.status_code == 302
    model.refresh_from_db()
    assert (model.name, model.slug, model.visibility) == ("Fraud v2", "fraud-v2", "internal")
    assert dict(model.tags.values_list("key", "value")) == {"domain": "cards"}
    assert model.metric_specs.get().higher_is_better is False


def test_renaming_to_a_taken_name_is_refused(client_for, owner, model):
    factories.registered_model(owner, "other")
    response = client_for(owner).post(edit_url(model), model_data("OTHER"))
    assert response.status_code == 400
    assert "is taken" in errors_in(response)
    model.refresh_from_db()
    assert model.name == "fraud"


def test_editor_and_viewer_may_not_change_settings(client_for, editor, viewer, model):
    for user in (editor, viewer):
        assert client_for(user).get(edit_url(model)).status_code == 403
        assert client_for(user).post(edit_url(model), model_data("x")).status_code == 403
    model.refresh_from_db()
    assert model.name == "fraud"


# ---------------------------------------------------------------------------------------------
# Deleting


def delete_url(model) -> str:
    return reverse("models_app:model_delete", args=[model.slug])


def test_delete_needs_the_name_typed(client_for, owner, model):
    factories.version(model, owner, files={"m.bin": b"M"})
    response = client_for(owner).post(delete_url(model), {"confirm": "fraud-detector"}, follow=True)
    assert "to confirm. Nothing was deleted." in response.content.decode()
    assert RegisteredModel.objects.filter(pk=model.pk).exists()
    assert len(stored_keys()) == 1


def test_manager_deletes_a_model_with_its_files(
    client_for, owner, model, django_capture_on_commit_callbacks
):
    factories.version(model, owner, files={"m.bin": b"M"})
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(owner).post(delete_url(model), {"confirm": "fraud", "reason": "x"})
    assert response.status_code == 302
    assert response["Location"] == reverse("models_app:model_list")
    assert not RegisteredModel.objects.exists()
    assert not ModelVersion.objects.exists()
    assert stored_keys() == []
    assert AuditEvent.objects.get(action="model.deleted").reason == "x"


def test_delete_is_post_only_and_needs_manage(client_for, owner, editor, viewer, model):
    assert client_for(owner).get(delete_url(model)).status_code == 405
    for user in (editor, viewer):
        assert client_for(user).post(delete_url(model), {"confirm": "fraud"}).status_code == 403
    assert RegisteredModel.objects.filter(pk=model.pk).exists()


def test_anonymous_is_sent_to_login_from_model_pages(anonymous, model):
    for url in (CREATE, edit_url(model), delete_url(model)):
        for method in ("get", "post"):
            response = getattr(anonymous, method)(url)
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("login"))
    assert RegisteredModel.objects.filter(pk=model.pk).exists()


def test_outsider_gets_404_on_model_settings(client_for, outsider, model):
    c = client_for(outsider)
    assert c.get(edit_url(model)).status_code == 404
    assert c.post(delete_url(model), {"confirm": "fraud"}).status_code == 404
    assert RegisteredModel.objects.filter(pk=model.pk).exists()
