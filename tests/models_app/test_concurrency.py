"""Races on PostgreSQL: version numbers and model names under concurrent writers."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from audit.chain import verify_chain
from models_app.models import Dataset, ModelVersion, RegisteredModel
from tests import factories
from tests.concurrency import run_at_once

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL row locks"),
]


def test_twenty_concurrent_registrations_get_numbers_one_to_twenty(owner):
    model = factories.registered_model(owner, "fraud")
    results = run_at_once(20, lambda i: factories.version(model, owner, metrics={"i": i}).number)
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    assert sorted(results) == list(range(1, 21))
    assert sorted(ModelVersion.objects.values_list("number", flat=True)) == list(range(1, 21))
    assert RegisteredModel.objects.get().next_version_number == 21
    assert verify_chain().ok


def test_two_users_creating_the_same_name_one_wins_one_is_told(owner, editor):
    users = [owner, editor]
    results = run_at_once(2, lambda i: factories.registered_model(users[i], "Fraud Detector"))
    created = [r for r in results if isinstance(r, RegisteredModel)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(created) == 1 and len(refused) == 1
    assert "is taken" in refused[0].message_dict["name"][0]
    assert RegisteredModel.objects.count() == 1
    assert connection.vendor == "postgresql"


def test_concurrent_registrations_naming_the_same_new_dataset_share_one_record(owner):
    """Datasets are written before the number is taken (issue 15, finding 6): registrations
    racing to register the same dataset still get distinct numbers and one record."""
    models = [factories.registered_model(owner, name) for name in ("fraud", "churn")]

    def register(i):
        datasets = [{"name": "shared", "uri": "s3://d/shared"}, {"name": f"own-{i}"}]
        return factories.version(models[i % 2], owner, datasets=datasets)

    results = run_at_once(10, register)
    assert [r for r in results if isinstance(r, Exception)] == []
    for model in models:
        numbers = sorted(model.versions.values_list("number", flat=True))
        assert numbers == [1, 2, 3, 4, 5]
    shared = Dataset.objects.get(name="shared")
    assert shared.uri == "s3://d/shared" and shared.version_links.count() == 10
    assert Dataset.objects.count() == 11
    assert verify_chain().ok


def test_a_dataset_registered_meanwhile_with_another_uri_is_refused_not_linked(owner):
    model = factories.registered_model(owner, "fraud")

    def register(i):
        return factories.version(model, owner, datasets=[{"name": "raced", "uri": f"s3://{i}"}])

    results = run_at_once(2, register)
    linked = [r for r in results if isinstance(r, ModelVersion)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(linked) == 1 and len(refused) == 1, results
    assert "raced" in str(refused[0])
    dataset = Dataset.objects.get(name="raced")
    assert linked[0].dataset_links.get().dataset == dataset
    assert model.versions.count() == 1
