import pytest
from django.urls import reverse

from audit.models import AuditEvent
from models_app.access import Role, roles_for, visible_models
from models_app.models import RegisteredModel
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def model(owner):
    return factories.registered_model(owner, "fraud")


def sharing_url(model):
    return reverse("models_app:model_sharing", args=[model.slug])


def test_manager_sees_who_has_which_role(client_for, owner, viewer, model):
    factories.grant(viewer, model, "view")
    team = factories.team("risk")
    factories.grant(team, model, "review")
    html = client_for(owner).get(sharing_url(model)).content.decode()
    assert "risk" in html and "viewer" in html and "owner" in html


def test_sharing_with_a_team_gives_its_members_the_role(client_for, owner, viewer, model):
    team = factories.team("risk", viewer)
    response = client_for(owner).post(
        sharing_url(model), {"kind": "team", "name": "risk", "roles": ["review"]}
    )
    assert response.status_code == 302
    assert roles_for(viewer, model) == {Role.REVIEW, Role.VIEW}
    event = AuditEvent.objects.get(action="sharing.changed")
    assert event.after == {"principal": "team risk", "roles": ["review", "view"]}
    assert team.pk


def test_changing_roles_replaces_them(client_for, owner, viewer, model):
    factories.grant(viewer, model, "edit")
    client_for(owner).post(
        sharing_url(model), {"kind": "user", "name": "viewer", "roles": ["view"]}
    )
    assert roles_for(viewer, model) == {Role.VIEW}


def test_removing_a_grant_takes_effect_on_the_next_request(client_for, owner, viewer, model):
    factories.grant(viewer, model, "view")
    c = client_for(viewer)
    assert c.get(model.get_absolute_url()).status_code == 200
    client_for(owner).post(
        reverse("models_app:model_sharing_remove", args=[model.slug]),
        {"kind": "user", "name": "viewer"},
    )
    assert c.get(model.get_absolute_url()).status_code == 404


def test_last_manager_cannot_be_removed(client_for, owner, model):
    c = client_for(owner)
    response = c.post(
        reverse("models_app:model_sharing_remove", args=[model.slug]),
        {"kind": "user", "name": "owner"},
        follow=True,
    )
    assert "last manager" in response.content.decode()
    assert Role.MANAGE in roles_for(owner, model)
    response = c.post(sharing_url(model), {"kind": "user", "name": "owner", "roles": ["view"]})
    assert response.status_code == 400
    assert "last manager" in response.content.decode()
    assert Role.MANAGE in roles_for(owner, model)


def test_a_second_manager_allows_the_first_to_step_down(client_for, owner, editor, model):
    factories.grant(editor, model, "manage")
    client_for(owner).post(
        reverse("models_app:model_sharing_remove", args=[model.slug]),
        {"kind": "user", "name": "owner"},
    )
    assert roles_for(owner, model) == set()


@pytest.mark.parametrize(
    "data,message",
    [
        ({"kind": "user", "name": "nobody", "roles": ["view"]}, "No active user named"),
        ({"kind": "team", "name": "ghosts", "roles": ["view"]}, "No team named"),
        ({"kind": "robot", "name": "owner", "roles": ["view"]}, "Choose a user or a team"),
        ({"kind": "user", "name": "viewer", "roles": ["admin"]}, "Unknown role"),
        ({"kind": "user", "name": "viewer"}, "Pick at least one role"),
    ],
)
def test_bad_sharing_requests_change_nothing(client_for, owner, viewer, model, data, message):
    c = client_for(owner)
    events = AuditEvent.objects.count()
    response = c.post(sharing_url(model), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert roles_for(viewer, model) == set()
    assert AuditEvent.objects.count() == events


def test_only_managers_reach_the_sharing_page(client_for, viewer, editor, outsider, model):
    factories.grant(viewer, model, "view")
    factories.grant(editor, model, "edit")
    assert client_for(viewer).get(sharing_url(model)).status_code == 403
    assert (
        client_for(editor)
        .post(sharing_url(model), {"kind": "user", "name": "editor", "roles": ["manage"]})
        .status_code
        == 403
    )
    assert client_for(outsider).get(sharing_url(model)).status_code == 404
    assert Role.MANAGE not in roles_for(editor, model)


def test_internal_model_is_visible_to_every_signed_in_user(owner, outsider):
    model = factories.registered_model(
        owner, "shared", visibility=RegisteredModel.Visibility.INTERNAL
    )
    assert model in visible_models(outsider)
    assert roles_for(outsider, model) == {Role.VIEW}


def test_global_django_permission_does_not_open_every_model(owner, outsider):
    from django.contrib.auth.models import Permission

    model = factories.registered_model(owner, "secret")
    outsider.user_permissions.add(*Permission.objects.filter(codename__in=[r.perm for r in Role]))
    outsider = type(outsider).objects.get(pk=outsider.pk)  # drop the permission cache
    assert model not in visible_models(outsider)
    assert roles_for(outsider, model) == set()


def test_superuser_sees_and_may_do_everything(owner, superuser):
    model = factories.registered_model(owner, "secret")
    assert model in visible_models(superuser)
    assert roles_for(superuser, model) == set(Role)


def test_teams_page_lists_my_teams_and_their_models(client_for, owner, viewer):
    team = factories.team("risk", viewer)
    shared = factories.registered_model(owner, "shared-with-risk")
    factories.grant(team, shared, "view")
    factories.registered_model(owner, "not-shared")
    html = client_for(viewer).get(reverse("teams")).content.decode()
    assert "risk" in html and "shared-with-risk" in html
    assert "not-shared" not in html
