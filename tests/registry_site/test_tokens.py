import secrets
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.http import HttpResponseForbidden
from django.test import Client, RequestFactory
from django.urls import resolve, reverse
from django.utils import timezone

from audit.models import AuditEvent
from registry_site.middleware import DeniedActionAuditMiddleware
from registry_site.models import ApiToken
from registry_site.tokens import token_create, token_revoke
from tests import factories

pytestmark = pytest.mark.django_db


API_MODELS = "/api/v1/models"


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_created_token_is_shown_once_and_only_its_digest_is_stored(client_for, viewer):
    c = client_for(viewer)
    response = c.post(reverse("profile"), {"name": "ci", "scope": "read"})
    assert response.status_code == 200
    secret = response.context["new_secret"]
    assert secret.startswith("mrt_")
    assert secret in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    token = ApiToken.objects.get()
    stored = " ".join(str(v) for v in ApiToken.objects.values().get().values())
    assert secret not in stored
    assert secret.split("_", 2)[2] not in stored
    assert len(token.digest) == 64
    assert secret not in c.get(reverse("profile")).content.decode()
    assert AuditEvent.objects.filter(action="token.created", actor=viewer).exists()


def test_token_signs_in_as_its_user_and_records_last_use(client, owner):
    model = factories.registered_model(owner, "fraud")
    token, secret = token_create(actor=owner, user=owner, name="ci")
    response = client.get(f"/api/v1/models/{model.name}", **bearer(secret))
    assert response.status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_read_only_token_cannot_post(client, owner):
    _, secret = token_create(actor=owner, user=owner, name="ci", scope="read")
    response = client.post(
        API_MODELS, {"name": "x"}, content_type="application/json", **bearer(secret)
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "read_only_token"


def test_write_token_is_not_subject_to_csrf(owner):
    from django.test import Client

    _, secret = token_create(actor=owner, user=owner, name="ci", scope="write")
    c = Client(enforce_csrf_checks=True)
    response = c.post("/api/v1/models/nope/versions/1/submit", **bearer(secret))
    assert response.status_code == 404  # reached the view: no CSRF failure (403)


def test_session_post_still_needs_csrf(owner):
    from django.test import Client

    c = Client(enforce_csrf_checks=True)
    c.force_login(owner)
    assert c.post(reverse("profile"), {"name": "x"}).status_code == 403


def test_expired_and_revoked_tokens_get_the_same_401(client, owner):
    expired, expired_secret = token_create(actor=owner, user=owner, name="old", expires_days=1)
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    revoked, revoked_secret = token_create(actor=owner, user=owner, name="gone")
    token_revoke(actor=owner, token=revoked)
    bodies = set()
    for secret in (expired_secret, revoked_secret, "mrt_nope_nope", "garbage"):
        response = client.get(API_MODELS, **bearer(secret))
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        bodies.add(response.content)
    assert len(bodies) == 1


def test_thousand_random_tokens_get_the_same_401_body(client, owner):
    token_create(actor=owner, user=owner, name="real")
    bodies = set()
    for i in range(1000):
        fake = (
            f"mrt_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
            if i % 2
            else secrets.token_urlsafe(20)
        )
        response = client.get(API_MODELS, **bearer(fake))
        assert response.status_code == 401
        bodies.add(response.content)
    assert len(bodies) == 1


def test_revoking_takes_effect_on_the_next_request(client, client_for, owner):
    token, secret = token_create(actor=owner, user=owner, name="ci")
    assert client.get(API_MODELS, **bearer(secret)).status_code == 200
    client_for(owner).post(reverse("token_revoke", args=[token.pk]))
    assert client.get(API_MODELS, **bearer(secret)).status_code == 401
    assert AuditEvent.objects.filter(action="token.revoked").count() == 1


def test_token_in_query_string_is_refused(client, owner):
    _, secret = token_create(actor=owner, user=owner, name="ci")
    response = client.get(reverse("home") + f"?token={secret}")
    assert response.status_code == 400
    assert "Authorization header" in response.json()["error"]["message"]


def test_token_never_grants_more_than_its_user(client, owner, outsider):
    model = factories.registered_model(owner, "secret")
    _, secret = token_create(actor=outsider, user=outsider, name="ci", scope="write")
    assert client.get(f"/api/v1/models/{model.name}", **bearer(secret)).status_code == 404


def test_inactive_users_token_stops_working(client, owner):
    _, secret = token_create(actor=owner, user=owner, name="ci")
    owner.is_active = False
    owner.save()
    assert client.get(API_MODELS, **bearer(secret)).status_code == 401


def test_cannot_revoke_someone_elses_token(client_for, owner, viewer):
    token, _ = token_create(actor=owner, user=owner, name="ci")
    assert client_for(viewer).post(reverse("token_revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.parametrize(
    "data,message",
    [
        ({"name": ""}, "Give the token a name"),
        ({"name": "x" * 101}, "at most 100"),
        ({"name": "ci", "scope": "admin"}, "Scope must be"),
        ({"name": "ci", "expires_days": "soon"}, "whole number"),
        ({"name": "ci", "expires_days": "0"}, "between 1 and 3650"),
    ],
)
def test_bad_token_requests_are_refused_clearly(client_for, viewer, data, message):
    response = client_for(viewer).post(reverse("profile"), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ApiToken.objects.exists()


def test_duplicate_active_token_name_is_refused(client_for, viewer):
    c = client_for(viewer)
    c.post(reverse("profile"), {"name": "ci"})
    response = c.post(reverse("profile"), {"name": "ci"})
    assert response.status_code == 400
    assert "already have an active token" in response.content.decode()
    assert ApiToken.objects.count() == 1


def test_create_token_command_prints_a_working_token(client, owner, capsys):
    call_command(
        "create_token",
        owner.username,
        "--name",
        "pipeline",
        "--scope",
        "write",
        "--expires-days",
        "30",
    )
    secret = capsys.readouterr().out.strip()
    assert client.get(API_MODELS, **bearer(secret)).status_code == 200
    token = ApiToken.objects.get()
    assert token.scope == "write"
    assert token.expires_at > timezone.now() + timedelta(days=29)


def test_a_refused_action_is_audited(client_for, owner, viewer):
    model = factories.registered_model(owner, "fraud")
    factories.grant(viewer, model, "view")
    response = client_for(viewer).post(reverse("models_app:model_sharing", args=[model.slug]))
    assert response.status_code == 403
    event = AuditEvent.objects.get(action="access.denied")
    assert event.actor == viewer
    assert event.model_id == model.pk
    assert event.after["path"] == f"/models/{model.slug}/sharing/"


def test_a_refusal_names_no_model_the_user_may_not_view(owner, outsider):
    """A refused POST at a private model's URL by someone who may not view it (any view that
    answers 403 before its lookup) adds nothing to that model's trail, which would also empty
    the model's MLflow answer cache."""
    model = factories.registered_model(owner, "fraud")
    head = AuditEvent.objects.filter(model=model).order_by("-seq").values_list("seq").first()
    path = reverse("models_app:model_sharing", args=[model.slug])
    request = RequestFactory().post(path)
    request.user = outsider
    request.resolver_match = resolve(path)
    middleware = DeniedActionAuditMiddleware(lambda request: HttpResponseForbidden())
    assert middleware(request).status_code == 403
    event = AuditEvent.objects.get(action="access.denied")
    assert event.actor == outsider and event.model_id is None and event.target_label == ""
    newest = AuditEvent.objects.filter(model=model).order_by("-seq").values_list("seq").first()
    assert newest == head


def test_a_csrf_refusal_is_not_audited(owner, viewer):
    model = factories.registered_model(owner, "fraud")
    factories.grant(viewer, model, "view")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(viewer)
    response = browser.post(reverse("models_app:model_sharing", args=[model.slug]))
    assert response.status_code == 403 and b"CSRF" in response.content
    assert not AuditEvent.objects.filter(action="access.denied").exists()


def test_a_refused_read_is_not_audited(client_for, owner, viewer):
    model = factories.registered_model(owner, "fraud")
    factories.grant(viewer, model, "view")
    assert (
        client_for(viewer).get(reverse("models_app:model_sharing", args=[model.slug])).status_code
        == 403
    )
    assert not AuditEvent.objects.filter(action="access.denied").exists()


@pytest.mark.parametrize(
    "path", ["/admin/", "/admin/auth/user/", "/", "/models/", "/accounts/profile/", "/audit/"]
)
def test_a_token_does_not_sign_in_outside_the_apis(client, path):
    """Token requests skip CSRF: a leaked token of a superuser must not open the admin or the
    dashboard, where it would act as a signed-in browser. There it is an anonymous visitor."""
    admin = factories.user("root")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    _, secret = token_create(actor=admin, user=admin, name="pipeline", scope="write")
    response = client.get(path, **bearer(secret))
    assert response.status_code == 302
    assert "/login/" in response["Location"]
    refused = client.post("/admin/auth/user/add/", {"username": "mallory"}, **bearer(secret))
    assert refused.status_code in (302, 403)
    assert not User.objects.filter(username="mallory").exists()


def test_a_superusers_token_still_works_on_both_apis(client):
    admin = factories.user("root")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    _, secret = token_create(actor=admin, user=admin, name="pipeline", scope="write")
    assert client.get(API_MODELS, **bearer(secret)).status_code == 200
    mlflow = client.get("/api/2.0/mlflow/registered-models/search", **bearer(secret))
    assert mlflow.status_code == 200, mlflow.content
    artifacts = client.get("/api/2.0/mlflow-artifacts/artifacts", **bearer(secret))
    assert artifacts.status_code == 200, artifacts.content
    created = client.post(
        API_MODELS, {"name": "by-token"}, content_type="application/json", **bearer(secret)
    )
    assert created.status_code == 201, created.content
