"""core/sql.py: the hand-written writes give what the ORM would have written."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.chain import verify_chain
from audit.models import AuditChainHead, AuditEvent
from core import sql
from models_app.models import Dependency, Metric, ModelVersion, Param, RegisteredModel, VersionTag
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
        assert "approvals_auditchainhead" in writes[0]  # nothing else written: the head too
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


@pytest.mark.parametrize("head_row", ["kept", "gone"])
def test_a_registration_moves_the_audit_chain_head_with_its_event(owner, head_row):
    model = factories.registered_model(owner, "fraud")
    if head_row == "gone":  # as the test runner's flush leaves it: started again from the log
        AuditChainHead.objects.all().delete()
    version = factories.version(model, owner, tags={"team": "risk"})
    event = AuditEvent.objects.get(action="version.created")
    assert event.target_id == str(version.pk) and event.after["number"] == version.number
    head = AuditChainHead.objects.get()
    assert (head.seq, head.hash) == (event.seq, event.hash)
    assert verify_chain().ok


def test_with_files_the_head_moves_after_them(owner):
    model = factories.registered_model(owner, "fraud")
    with CaptureQueriesContext(connection) as queries:
        factories.version(model, owner, files={"model.pkl": b"weights"})
    statements = [q["sql"] for q in queries.captured_queries]
    numbered = next(i for i, q in enumerate(statements) if "next_version_number" in q)
    files = next(i for i, q in enumerate(statements) if 'INTO "models_app_artifact"' in q)
    head = next(i for i, q in enumerate(statements) if 'UPDATE "approvals_auditchainhead"' in q)
    assert numbered < files < head
    assert verify_chain().ok


def _where(column: str, condition: str, params: list) -> list:
    table = sql.table(RegisteredModel)
    query = f"SELECT {column} FROM {table} WHERE {condition} ORDER BY {column}"  # noqa: S608
    return [row[0] for row in sql.fetch(query, params)]


@pytest.mark.parametrize("values", [[], [1], "ids"])
def test_among_selects_exactly_the_rows_listed(owner, values):
    models = [factories.registered_model(owner, f"m{i}") for i in range(4)]
    if values == "ids":
        values = [models[0].pk, models[2].pk, models[3].pk]
    else:
        values = [models[0].pk for _ in values]
    assert _where("id", *sql.among("id", values)) == sorted(set(values))
    assert _where("id", *sql.not_among("id", values)) == sorted(
        {m.pk for m in models} - set(values)
    )


def test_among_takes_text_values_too(owner):
    for name in ("fraud", "churn", "credit"):
        factories.registered_model(owner, name)
    assert _where("name", *sql.among("name", ["churn", "credit", "absent"])) == ["churn", "credit"]
