"""Shared fixtures: personas, query-count pinning, and a real S3 server on loopback."""

import os
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from registry_site.tokens import token_create
from tests import factories


@pytest.fixture(autouse=True)
def _fresh_mlflow_cache():
    """Each test starts with an empty answer cache: test databases reuse ids and audit
    sequence numbers after each rollback, which a real database never does."""
    from registry_site.mlflow_compat import cache

    cache.clear()
    yield
    cache.clear()


# ---------------------------------------------------------------------------------------------
# Personas. Later issues give each a role on a model; here they are plain accounts.


@pytest.fixture
def owner(db) -> User:
    return factories.user("owner")


@pytest.fixture
def editor(db) -> User:
    return factories.user("editor")


@pytest.fixture
def reviewer(db) -> User:
    return factories.user("reviewer")


@pytest.fixture
def viewer(db) -> User:
    return factories.user("viewer")


@pytest.fixture
def outsider(db) -> User:
    return factories.user("outsider")


@pytest.fixture
def superuser(db) -> User:
    return factories.user("root", is_superuser=True, is_staff=True)


@pytest.fixture
def anonymous(client):
    """A client that is not signed in."""
    return client


@pytest.fixture
def api_client():
    """api_client(user, scope="write"): a client sending a fresh token of the user."""

    made = iter(range(1, 1000))

    def make(user, scope: str = "write") -> Client:
        name = f"test-{scope}-{next(made)}"
        _, secret = token_create(actor=user, user=user, name=name, scope=scope)
        return Client(headers={"Authorization": f"Bearer {secret}"})

    return make


@pytest.fixture
def client_for(client) -> Callable[[User], object]:
    """client_for(user) returns a test client signed in as that user."""
    from django.test import Client

    def make(user: User) -> Client:
        c = Client()
        c.force_login(user)
        return c

    return make


# ---------------------------------------------------------------------------------------------
# Query counts: a page must do the same number of queries whatever the data size.


def count_queries(fn: Callable[[], object]) -> int:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


@pytest.fixture
def assert_constant_queries():
    """assert_constant_queries(request_fn, grow_fn): same query count before and after growth.

    ``request_fn`` performs the request (and asserts its status); ``grow_fn`` adds data.
    Returns the count so a test can also pin the absolute number.
    """

    def check(request_fn: Callable[[], object], grow_fn: Callable[[], object]) -> int:
        request_fn()  # warm caches (content types, sessions) so they do not skew the count
        small = count_queries(request_fn)
        grow_fn()
        large = count_queries(request_fn)
        assert small == large, f"query count grew with the data: {small} -> {large}"
        return small

    return check


# ---------------------------------------------------------------------------------------------
# S3: moto's standalone server on 127.0.0.1 with a free port, django-storages pointed at it.


@pytest.fixture(scope="session")
def s3_server():
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_storage_settings(endpoint_url: str, bucket: str) -> dict:
    from botocore.config import Config

    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url,
            "access_key": "testing",
            "secret_key": "testing",
            "region_name": "us-east-1",
            "addressing_style": "path",
            "signature_version": "s3v4",
            "file_overwrite": False,
            "default_acl": None,
            "client_config": Config(
                connect_timeout=2, read_timeout=10, retries={"max_attempts": 1, "mode": "standard"}
            ),
        },
    }


@pytest.fixture
def s3_storage(s3_server, settings):
    """Artifact storage switched to a fresh bucket on the moto server for this test."""
    import uuid

    import boto3
    from django.core.files.storage import default_storage

    bucket = f"artifacts-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=s3_server,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    settings.STORAGES = {**settings.STORAGES, "default": s3_storage_settings(s3_server, bucket)}
    settings.S3_BUCKET = bucket  # Django's setting_changed signal resets default_storage
    yield default_storage
