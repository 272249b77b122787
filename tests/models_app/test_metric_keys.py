"""How many of each model's versions carry each metric (ModelMetricKey rows: the model page's
sort menu, and whether its grid must look for versions without the sorted metric): right
after every service that adds, edits or deletes a version, and check_invariants names a
model whose rows are wrong."""

import io

import pytest
from django.core.management import call_command

from models_app import services, summary
from models_app.metadata import parse_metadata
from models_app.models import ModelMetricKey, RegisteredModel
from registry_site import invariants
from registry_site.mlflow_compat import services as mlflow_services
from tests import factories
from tests.models_app.test_register import use_local_storage

pytestmark = pytest.mark.django_db


@pytest.fixture
def model(owner, editor):
    m = factories.registered_model(owner, "fraud")
    factories.grant(editor, m, "edit")
    return m


def kept(model) -> dict:
    """The model's rows as {"name@split": versions}, checked against the metrics first."""
    assert summary.wrong_metric_keys() == {}, invariants.check_metric_keys()
    rows = model.metric_counts.values_list("name", "split", "versions")
    return {f"{name}@{split}" if split else name: n for name, split, n in rows}


def metrics(*keys) -> list[dict]:
    rows = []
    for key in keys:
        name, _, split = key.partition("@")
        rows.append({"name": name, "split": split, "value": 0.5})
    return rows


def test_creating_versions_counts_each_metric_and_split(model, editor):
    factories.version(model, editor, metrics=metrics("auc@test", "auc@train", "loss"))
    factories.version(model, editor, metrics=metrics("auc@test"))
    factories.version(model, editor)  # no metrics: no row
    assert kept(model) == {"auc@test": 2, "auc@train": 1, "loss": 1}


def test_editing_a_draft_moves_its_counts_to_its_new_metrics(model, editor):
    v = factories.version(model, editor, metrics=metrics("auc@test", "loss"))
    factories.version(model, editor, metrics=metrics("auc@test"))
    services.version_update(
        actor=editor, version=v, metadata=parse_metadata({"metrics": metrics("auc@test", "f1")})
    )
    assert kept(model) == {"auc@test": 2, "f1": 1}
    v.refresh_from_db()
    services.version_update(actor=editor, version=v, metadata=parse_metadata({}))
    assert kept(model) == {"auc@test": 1}


def test_deleting_versions_takes_their_metrics_away(model, editor):
    v1 = factories.version(model, editor, metrics=metrics("auc@test"))
    v2 = factories.version(model, editor, metrics=metrics("auc@test", "loss"))
    services.version_delete(actor=editor, version=v1)
    assert kept(model) == {"auc@test": 1, "loss": 1}
    mlflow_services.version_delete_with_aliases(actor=editor, version=v2)
    assert kept(model) == {}


def test_deleting_a_model_takes_its_rows_with_it(model, owner, editor):
    other = factories.registered_model(owner, "other")
    factories.version(other, owner, metrics=metrics("auc@test"))
    factories.version(model, editor, metrics=metrics("auc@test"))
    services.model_delete(actor=owner, model=model)
    assert kept(other) == {"auc@test": 1}
    assert ModelMetricKey.objects.count() == 1


def test_import_csv_counts_the_metrics_of_its_rows(settings, tmp_path, owner):
    use_local_storage(settings, tmp_path)
    sheet = tmp_path / "versions.csv"
    sheet.write_text("model,version,metric:auc@test,metric:loss\nchurn,a,0.9,0.1\nchurn,b,0.8,\n")
    call_command("import_csv", str(sheet), "--as", "owner", stdout=io.StringIO())
    assert kept(RegisteredModel.objects.get(name="churn")) == {"auc@test": 2, "loss": 1}


def test_recompute_sets_what_the_metrics_say(model, editor):
    factories.version(model, editor, metrics=metrics("auc@test"))
    ModelMetricKey.objects.filter(model=model).update(versions=7)
    ModelMetricKey.objects.create(model=model, name="loss", split="", versions=1)
    summary.recompute([model.pk])
    assert kept(model) == {"auc@test": 1}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda m: ModelMetricKey.objects.filter(model=m).update(versions=3),
         "fraud: metrics {'auc@test': 3} (the versions say {'auc@test': 1})"),
        (lambda m: ModelMetricKey.objects.filter(model=m).delete(),
         "fraud: metrics {} (the versions say {'auc@test': 1})"),
        (lambda m: ModelMetricKey.objects.create(model=m, name="loss", split="", versions=1),
         "fraud: metrics {'auc@test': 1, 'loss': 1} (the versions say {'auc@test': 1})"),
    ],
)  # fmt: skip
def test_check_invariants_names_wrong_metric_counts(model, editor, change, says):
    factories.version(model, editor, metrics=metrics("auc@test"))
    assert invariants.check_metric_keys() == []
    change(model)
    assert [str(v) for v in invariants.check_metric_keys()] == [f"wrong_metric_keys: {says}"]
    assert "wrong_metric_keys" in {v.kind for v in invariants.check_all(verify_digests=False)}
