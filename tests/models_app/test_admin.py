import pytest
from django.urls import reverse

from audit.models import AuditEvent
from models_app.access import Role, roles_for
from tests import factories

pytestmark = pytest.mark.django_db


def test_superuser_grants_a_role_in_the_admin_through_sharing_rules(
    client_for, superuser, owner, viewer
):
    model = factories.registered_model(owner, "fraud")
    url = reverse(
        "admin:models_app_registeredmodel_permissions_manage_user", args=[model.pk, viewer.pk]
    )
    response = client_for(superuser).post(url, {"permissions": ["review_registeredmodel"]})
    assert response.status_code == 302
    assert roles_for(viewer, model) == {Role.REVIEW, Role.VIEW}  # implied view added
    event = AuditEvent.objects.get(action="sharing.changed")
    assert event.actor == superuser and event.after["principal"] == "viewer"


def test_admin_cannot_remove_the_last_manager(client_for, superuser, owner):
    model = factories.registered_model(owner, "fraud")
    url = reverse(
        "admin:models_app_registeredmodel_permissions_manage_user", args=[model.pk, owner.pk]
    )
    response = client_for(superuser).post(
        url, {"permissions": ["view_registeredmodel"]}, follow=True
    )
    assert "last manager" in response.content.decode()
    assert Role.MANAGE in roles_for(owner, model)


def test_staff_cannot_manage_roles_in_the_admin(client_for, owner):
    from django.contrib.auth.models import Permission

    staff = factories.user("staffer", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__endswith="registeredmodel"))
    model = factories.registered_model(owner, "fraud")
    factories.grant(staff, model, "view")
    url = reverse("admin:models_app_registeredmodel_permissions", args=[model.pk])
    assert client_for(staff).get(url).status_code == 403


def test_saving_the_read_only_change_page_writes_nothing(client_for, superuser, owner):
    from models_app.models import RegisteredModel

    model = factories.registered_model(owner, "fraud")
    updated_at = RegisteredModel.objects.get(pk=model.pk).updated_at
    url = reverse("admin:models_app_registeredmodel_change", args=[model.pk])
    assert client_for(superuser).post(url, {"_save": "Save"}).status_code == 302
    assert RegisteredModel.objects.get(pk=model.pk).updated_at == updated_at
