"""Races on PostgreSQL: two uploads at once cannot both take a quota's last free bytes
(issue 15, finding 20)."""

import pytest
from django.db import connection  # noqa: F401 (read by the skipif condition)

from core.errors import QuotaExceeded
from models_app import services, storage
from models_app.metadata import parse_metadata
from models_app.models import Artifact
from registry_site.mlflow_compat import services as mlflow_services
from registry_site.mlflow_compat.models import StagedArtifact
from tests import factories
from tests.concurrency import run_at_once
from tests.models_app.test_register import stored_keys, use_local_storage

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL row locks"),
]


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    use_local_storage(settings, tmp_path)


def test_two_uploads_cannot_both_take_the_users_last_free_bytes(settings, owner):
    settings.REGISTRY_QUOTA_USER_BYTES = 100
    model = factories.registered_model(owner, "fraud")
    drafts = [factories.version(model, owner), factories.version(model, owner)]

    def upload(i: int):
        incoming = storage.incoming_from_bytes(f"f{i}.bin", b"x" * 60)
        return services.artifact_add(actor=owner, version=drafts[i], files=[incoming])

    results = run_at_once(2, upload)
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(refused) == 1, results
    assert refused[0].status == 413
    assert Artifact.objects.count() == 1
    assert len(stored_keys()) == 1  # the loser's file was deleted


def test_a_staged_upload_and_a_version_upload_share_the_models_last_bytes(settings, owner, editor):
    settings.REGISTRY_QUOTA_MODEL_BYTES = 100
    model = factories.registered_model(owner, "fraud")
    factories.grant(editor, model, "edit")
    draft = factories.version(model, owner)

    def upload(i: int):
        incoming = storage.incoming_from_bytes("m.bin", b"x" * 60)
        if i == 0:
            return services.artifact_add(actor=owner, version=draft, files=[incoming])
        return mlflow_services.staged_put(
            actor=editor, model=model, path="up/m.bin", incoming=incoming
        )

    results = run_at_once(2, upload)
    assert len([r for r in results if isinstance(r, QuotaExceeded)]) == 1, results
    assert Artifact.objects.count() + StagedArtifact.objects.count() == 1
    assert len(stored_keys()) == 1


def test_two_registrations_by_reference_cannot_both_take_the_models_last_bytes(settings, owner):
    model = factories.registered_model(owner, "fraud")
    for i in range(2):  # two uploads outside registry/, charged to owner
        mlflow_services.staged_put(
            actor=owner,
            model=None,
            path=f"team-x/up{i}/m.bin",
            incoming=storage.incoming_from_bytes("m.bin", b"x" * 60),
        )
    settings.REGISTRY_QUOTA_MODEL_BYTES = 100

    def register(i: int):
        return mlflow_services.version_register(
            actor=owner, model=model, metadata=parse_metadata({}), upload_prefix=f"team-x/up{i}"
        )

    results = run_at_once(2, register)
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(refused) == 1, results
    assert refused[0].status == 413
    assert Artifact.objects.count() == 1
    assert len(stored_keys()) == 2  # the refused registration's upload stays its owner's
