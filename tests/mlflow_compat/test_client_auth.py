"""Signing the MLflow client in: tokens, Basic credentials, nobody; and the server-info probe."""

import pytest
from mlflow.exceptions import MlflowException

from models_app.models import RegisteredModel

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_client_without_credentials_is_unauthenticated(as_user, shared_model):
    client = as_user(None)
    with pytest.raises(MlflowException) as anonymous:
        client.search_registered_models()
    assert anonymous.value.error_code == "UNAUTHENTICATED"
    assert "MLFLOW_TRACKING_TOKEN" in str(anonymous.value)
    with pytest.raises(MlflowException):
        client.create_registered_model("sneaky")
    assert not RegisteredModel.objects.filter(name="sneaky").exists()


def test_basic_credentials_work_and_a_wrong_password_is_unauthenticated(
    as_user, people, shared_model
):
    client = as_user(people["viewer"], basic=True)
    assert [m.name for m in client.search_registered_models()] == ["fraud-detector"]
    client = as_user(people["viewer"], basic=True, password="not-the-password")
    with pytest.raises(MlflowException) as wrong:
        client.get_registered_model("fraud-detector")
    assert wrong.value.error_code == "UNAUTHENTICATED"


def test_a_read_only_token_reads_but_cannot_write(as_user, people, shared_model):
    client = as_user(people["owner"], scope="read")
    assert client.get_registered_model("fraud-detector").name == "fraud-detector"
    with pytest.raises(MlflowException) as refused:
        client.delete_registered_model("fraud-detector")
    assert "read-only" in str(refused.value)
    assert RegisteredModel.objects.filter(name="fraud-detector").exists()


@pytest.mark.urls("tests.mlflow_compat.urls_with_v3")
def test_server_info_says_no_multipart_and_no_workspaces(client, people):
    assert client.get("/api/3.0/mlflow/server-info").status_code == 401
    client.force_login(people["viewer"])
    assert client.get("/api/3.0/mlflow/server-info").json() == {
        "store_type": "ModelRegistry",
        "workspaces_enabled": False,
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
    }
