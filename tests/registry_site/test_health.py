import pytest
from django.urls import reverse

from tests.conftest import s3_storage_settings


@pytest.mark.django_db
def test_healthz_is_public_and_reports_ok(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "storage": "ok"}


@pytest.mark.django_db
def test_healthz_names_storage_when_s3_is_unreachable(client, settings):
    # A closed port on loopback: nothing listens on port 9 here.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage_settings("http://127.0.0.1:9", "no-such-bucket"),
    }
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"] == {"database": "ok", "storage": "error"}
    assert "127.0.0.1" not in response.content.decode()  # no internals leak


@pytest.mark.django_db
def test_healthz_ok_against_real_s3_server(client, s3_storage):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json()["checks"]["storage"] == "ok"


def test_healthz_refuses_post(client):
    assert client.post(reverse("healthz")).status_code == 405
