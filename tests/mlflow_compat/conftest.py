"""Fixtures for the MLflow API: the real MLflow client pointed at a live server, as a user.

The client reads its configuration from environment variables on every call, so each test
sets them (through monkeypatch) for the user it acts as. Retries are off: a server bug must
fail the test at once, not after minutes of backoff.
"""

import gc
import threading

import pytest
from django.db import connection

from registry_site.models import ApiToken
from registry_site.tokens import token_create
from tests import factories

MLFLOW_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
)


@pytest.fixture
def as_user(live_server, monkeypatch):
    """as_user(user) → an MlflowClient acting as ``user`` through a write token; ``basic=True``
    uses the user's password instead, ``scope="read"`` a read-only token, ``user=None`` no
    credentials at all. The credentials are process-wide environment variables: every client
    acts as whoever as_user() was called for last."""
    from mlflow import MlflowClient
    from mlflow.utils import request_utils

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    tokens: dict = {}
    # The client keeps its HTTP sessions (and their keep-alive connections) for the process;
    # closing them after the test lets the live server's request threads end with the test.
    sessions = {}
    cached = request_utils._cached_get_request_session

    def remembered(*args, **kwargs):
        session = cached(*args, **kwargs)
        sessions[id(session)] = session
        return session

    monkeypatch.setattr(request_utils, "_cached_get_request_session", remembered)
    if connection.vendor == "sqlite":
        # The live server shares the test's in-memory SQLite connection between its request
        # threads (in production each thread has its own), so requests that overlap, such as
        # the client's parallel downloads, would trip over it: serve one at a time there.
        # PostgreSQL serves them in parallel.
        from django.core.servers import basehttp

        one_at_a_time = threading.Lock()
        run = basehttp.ServerHandler.run

        def serialized(self, application):
            with one_at_a_time:
                return run(self, application)

        monkeypatch.setattr(basehttp.ServerHandler, "run", serialized)

    def act(user, *, basic: bool = False, scope: str = ApiToken.Scope.WRITE, password=None):
        for name in MLFLOW_ENV:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
        if user is not None and basic:
            monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user.get_username())
            monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password or factories.PASSWORD)
        elif user is not None:
            if (user.pk, scope) not in tokens:
                tokens[user.pk, scope] = token_create(
                    actor=user, user=user, name=f"mlflow-{scope}", scope=scope
                )[1]
            monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens[user.pk, scope])
        return MlflowClient(tracking_uri=live_server.url, registry_uri=live_server.url)

    yield act
    for session in sessions.values():
        session.close()
    cached.cache_clear()
    gc.collect()  # responses left unread hold their sockets until collected


@pytest.fixture
def people(transactional_db):
    """A model owned (managed) by ``owner``, with an editor, a reviewer, a promoter, a viewer
    and an outsider."""
    owner = factories.user("owner")
    users = {
        "owner": owner,
        "editor": factories.user("editor"),
        "reviewer": factories.user("reviewer"),
        "promoter": factories.user("promoter"),
        "viewer": factories.user("viewer"),
        "outsider": factories.user("outsider"),
    }
    return users


@pytest.fixture
def shared_model(people):
    model = factories.registered_model(people["owner"], "fraud-detector")
    for persona, role in (
        ("editor", "edit"), ("reviewer", "review"), ("promoter", "promote"), ("viewer", "view"),
    ):  # fmt: skip
        factories.grant(people[persona], model, role)
    return model


def approve(version, *, editor, reviewer) -> None:
    """Submit and approve through the workflow (the model's policy asks for nothing more)."""
    from approvals import services as approvals

    approvals.version_submit(actor=editor, version=version)
    approvals.review_approve(actor=reviewer, version=version, reason="looks good")


@pytest.fixture
def lenient_policy(shared_model, people):
    """One approval, no required description/dataset/metrics/files: versions registered
    through MLflow from an external URI carry none of those."""
    from approvals import services as approvals

    approvals.policy_update(
        actor=people["owner"],
        model=shared_model,
        required_approvals=1,
        require_description=False,
        require_training_dataset=False,
        require_metrics=False,
        verify_artifacts=False,
    )
    return shared_model
