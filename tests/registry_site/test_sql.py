"""registry_site/sql.py: the hand-written writes give what the ORM would have written."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from models_app.models import Dependency, Metric, ModelVersion, Param, RegisteredModel, VersionTag
from registry_site import sql
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_version_and_its_metadata_rows_are_written_as_the_orm_reads_them(owner):
    model = factories.registered_model(owner, "fraud")
    with CaptureQueriesContext(connection) as queries:
        version = factories.version(
            model,
            owner,
            metrics=[{"name": "auc", "value": 0.91, "split": "test"}, {"name": "loss", "value": 2}],
            params={"depth": "6", "eta": "0.3"},
            tags={"team": "risk"},
            requirements="numpy==2.1\nscikit-learn>=1.5\n",
        )
    stored = ModelVersion.objects.get(pk=version.pk)
    assert (stored.number, stored.model_id, stored.created_by_id) == (1, model.pk, owner.pk)
    metrics = {(m.name, m.value, m.split) for m in Metric.objects.filter(version=stored)}
    assert metrics == {("auc", 0.91, "test"), ("loss", 2.0, "")}
    assert dict(Param.objects.filter(version=stored).values_list("key", "value")) == {
        "depth": "6",
        "eta": "0.3",
    }
    assert dict(VersionTag.objects.filter(version=stored).values_list("key", "value")) == {
        "team": "risk"
    }
    assert dict(Dependency.objects.filter(version=stored).values_list("name", "specifier")) == {
        "numpy": "==2.1",
        "scikit-learn": ">=1.5",
    }
    writes = [q["sql"] for q in queries.captured_queries if 'INTO "models_app_metric"' in q["sql"]]
    if connection.vendor == "postgresql":  # number, version and all four kinds: one statement
        assert len(writes) == 1 and "models_app_versiontag" in writes[0]
        assert "models_app_dependency" in writes[0] and "next_version_number" in writes[0]
    else:
        assert len(writes) == 1 and "models_app_versiontag" not in writes[0]


def test_numbers_follow_the_model_counter(owner):
    model = factories.registered_model(owner, "fraud")
    numbers = [factories.version(model, owner).number for _ in range(3)]
    model.refresh_from_db()
    assert numbers == [1, 2, 3] and model.next_version_number == 4


def test_nothing_is_written_when_the_counter_row_is_gone(owner):
    model = factories.registered_model(owner, "fraud")
    gone = RegisteredModel.objects.get(pk=model.pk)
    RegisteredModel.objects.filter(pk=model.pk).delete()
    version = ModelVersion(model=gone, created_by=owner)
    tag = VersionTag(version=version, key="k", value="v")
    assert not sql.insert_numbered(version, "number", gone, "next_version_number", children=[tag])
    assert not ModelVersion.objects.exists() and not VersionTag.objects.exists()
