"""Races on PostgreSQL: two registrations of the same staged upload."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection  # noqa: F401 (used by the skipif condition)

from models_app import storage
from models_app.metadata import parse_metadata
from models_app.models import Artifact, ModelVersion
from registry_site.mlflow_compat import services
from registry_site.mlflow_compat.models import StagedArtifact
from tests import factories
from tests.concurrency import run_at_once

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL row locks"),
]


def test_the_same_upload_registered_twice_at_once_becomes_one_version(owner):
    model = factories.registered_model(owner, "fraud-detector")
    for path in ("up/model.bin", "up/MLmodel"):
        services.staged_put(
            actor=owner, model=model, path=path, incoming=storage.incoming_from_bytes(path, b"w")
        )

    def register(i):
        return services.version_register(
            actor=owner, model=model, metadata=parse_metadata({}), staged_prefix="up"
        )

    results = run_at_once(2, register)
    versions = [r for r in results if isinstance(r, ModelVersion)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(versions) == 1 and len(refused) == 1, results
    assert "No files were uploaded" in refused[0].messages[0]
    assert sorted(Artifact.objects.values_list("path", flat=True)) == ["MLmodel", "model.bin"]
    assert not StagedArtifact.objects.exists()
