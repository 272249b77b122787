"""How many of each model's versions name each framework (ModelFramework rows, what the model
list's framework filter reads): right after every service that adds, edits or deletes a
version, and check_invariants names a model whose rows are wrong."""

import io

import pytest
from django.core.management import call_command

from models_app import selectors, services, storage, summary
from models_app.metadata import parse_metadata
from models_app.models import ModelFramework, RegisteredModel
from registry_site import invariants
from registry_site.mlflow_compat import services as mlflow_services
from tests import factories
from tests.models_app.test_inspection import onnx_model
from tests.models_app.test_register import use_local_storage

pytestmark = pytest.mark.django_db


@pytest.fixture
def model(owner, editor):
    m = factories.registered_model(owner, "fraud")
    factories.grant(editor, m, "edit")
    return m


def kept(model) -> dict:
    """The model's rows, checked against the versions first."""
    assert summary.wrong_frameworks() == {}, invariants.check_frameworks()
    return dict(model.framework_counts.values_list("framework", "versions"))


def test_creating_versions_counts_each_framework_as_written(model, editor):
    factories.version(model, editor, framework="xgboost")
    factories.version(model, editor, framework="XGBoost")
    factories.version(model, editor, framework="xgboost")
    factories.version(model, editor)  # no framework: no row
    assert kept(model) == {"xgboost": 2, "XGBoost": 1}


def test_editing_a_draft_moves_it_to_its_new_framework(model, editor):
    v = factories.version(model, editor, framework="xgboost")
    factories.version(model, editor, framework="xgboost")
    services.version_update(
        actor=editor, version=v, metadata=parse_metadata({"framework": "torch"})
    )
    assert kept(model) == {"xgboost": 1, "torch": 1}
    v.refresh_from_db()
    services.version_update(actor=editor, version=v, metadata=parse_metadata({}))
    assert kept(model) == {"xgboost": 1}


def test_deleting_versions_takes_their_frameworks_away(model, editor):
    v1 = factories.version(model, editor, framework="xgboost")
    v2 = factories.version(model, editor, framework="xgboost")
    services.version_delete(actor=editor, version=v1)
    assert kept(model) == {"xgboost": 1}
    mlflow_services.version_delete_with_aliases(actor=editor, version=v2)
    assert kept(model) == {}


def test_a_file_that_tells_the_framework_fills_it_and_counts_it(settings, tmp_path, model, editor):
    use_local_storage(settings, tmp_path)
    v = factories.version(model, editor)
    assert kept(model) == {}
    services.artifact_add(
        actor=editor, version=v, files=[storage.incoming_from_bytes("m.onnx", onnx_model())]
    )
    v.refresh_from_db()
    assert v.framework == "onnx"
    assert kept(model) == {"onnx": 1}


def test_deleting_a_model_takes_its_rows_with_it(model, owner, editor):
    other = factories.registered_model(owner, "other")
    factories.version(other, owner, framework="xgboost")
    factories.version(model, editor, framework="xgboost")
    services.model_delete(actor=owner, model=model)
    assert kept(other) == {"xgboost": 1}
    assert ModelFramework.objects.count() == 1


def test_import_csv_counts_the_frameworks_of_its_rows(settings, tmp_path, owner):
    use_local_storage(settings, tmp_path)
    sheet = tmp_path / "versions.csv"
    sheet.write_text("model,version,framework\nchurn,a,sklearn\nchurn,b,sklearn\nchurn,c,\n")
    call_command("import_csv", str(sheet), "--as", "owner", stdout=io.StringIO())
    assert kept(RegisteredModel.objects.get(name="churn")) == {"sklearn": 2}


def test_recompute_sets_what_the_versions_say(model, editor):
    factories.version(model, editor, framework="xgboost")
    ModelFramework.objects.filter(model=model).update(versions=7)
    ModelFramework.objects.create(model=model, framework="torch", versions=1)
    summary.recompute([model.pk])
    assert kept(model) == {"xgboost": 1}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda m: ModelFramework.objects.filter(model=m).update(versions=3),
         "fraud: frameworks {'xgboost': 3} (the versions say {'xgboost': 1})"),
        (lambda m: ModelFramework.objects.filter(model=m).delete(),
         "fraud: frameworks {} (the versions say {'xgboost': 1})"),
        (lambda m: ModelFramework.objects.create(model=m, framework="torch", versions=1),
         "fraud: frameworks {'xgboost': 1, 'torch': 1} (the versions say {'xgboost': 1})"),
    ],
)  # fmt: skip
def test_check_invariants_names_wrong_frameworks(model, editor, change, says):
    factories.version(model, editor, framework="xgboost")
    assert invariants.check_frameworks() == []
    change(model)
    assert [str(v) for v in invariants.check_frameworks()] == [f"wrong_frameworks: {says}"]
    assert "wrong_frameworks" in {v.kind for v in invariants.check_all(verify_digests=False)}


def test_the_filter_matches_any_version_case_aside(model, owner, editor):
    factories.version(model, editor, framework="XGBoost")
    factories.version(model, editor, framework="torch")  # the latest
    other = factories.registered_model(owner, "other")
    factories.version(other, owner, framework="xgboost-lite")

    def names(framework):
        return [m.name for m in selectors.model_list(owner, framework=framework)]

    assert names("xgboost") == ["fraud"]
    assert names("TORCH") == ["fraud"]
    assert names("xgboost-lite") == ["other"]
    assert names("jax") == []
