import json

import pytest
from django.test import Client

from tests import factories

API = "/api/2.0/mlflow"


class Caller:
    """A user speaking the MLflow wire protocol through the test client (JSON bodies)."""

    def __init__(self, user):
        self.user = user
        self.client = Client()
        self.client.force_login(user)

    def get(self, route: str, **query):
        return self.client.get(f"{API}/{route}", query)

    def post(self, path: str, body: dict, method: str = "POST"):
        return self.client.generic(
            method, f"{API}/{path}", json.dumps(body), content_type="application/json"
        )


@pytest.fixture
def caller(db):
    return lambda user: Caller(user)


@pytest.fixture
def scientist(db):
    return factories.user("scientist")


@pytest.fixture
def colleague(db):
    return factories.user("colleague")
