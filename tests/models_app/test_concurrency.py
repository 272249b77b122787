"""Races on PostgreSQL: version numbers and model names under concurrent writers."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from audit.chain import verify_chain
from models_app.models import ModelVersion, RegisteredModel
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
