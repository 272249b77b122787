"""manage.py import_csv: versions from a spreadsheet, all rows or none."""

import io
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from models_app import services
from models_app.models import Dataset, RegisteredModel
from tests import factories
from tests.models_app.test_register import stored_keys, use_local_storage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    return use_local_storage(settings, tmp_path)


CSV = """model,version,description,framework,metric:auc@test,metric:loss,param:depth,datasets,dataset:test,artifact
churn,2024-01,First try,sklearn,0.81,0.40,6,s3://data/churn-2023.parquet,s3://data/holdout.parquet,weights/churn-1.bin
churn,2024-02,"Second try,
with more data",sklearn,0.84,0.35,8,s3://data/churn-2023.parquet;s3://data/churn-2024.parquet,,s3://bucket/churn-2.bin
"""  # noqa: E501


@pytest.fixture
def sheet(tmp_path) -> Path:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "churn-1.bin").write_bytes(b"churn weights")
    path = tmp_path / "versions.csv"
    path.write_text(CSV)
    return path


def run_csv(*args) -> str:
    out = io.StringIO()
    call_command("import_csv", *map(str, args), stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_csv_rows_become_versions_with_metrics_params_datasets_and_files(sheet, owner):
    out = run_csv(sheet, "--as", "owner")
    churn = RegisteredModel.objects.get(name="churn")
    assert churn.owner == owner
    first, second = churn.versions.order_by("number")
    assert first.metric_map() == {("auc", "test"): 0.81, ("loss", ""): 0.40}
    assert dict(first.params.values_list("key", "value")) == {"depth": "6"}
    assert dict(first.tags.values_list("key", "value")) == {"label": "2024-01"}
    assert set(first.dataset_links.values_list("dataset__name", "role")) == {
        ("s3://data/churn-2023.parquet", "train"),
        ("s3://data/holdout.parquet", "test"),
    }
    assert first.artifacts.get().path == "churn-1.bin"
    assert second.description == "Second try,\nwith more data"
    assert second.tags.get(key="artifact_uri").value == "s3://bucket/churn-2.bin"
    assert second.dataset_links.count() == 2
    assert "Imported 2 version(s) into 1 model(s) (1 new)" in out
    assert "line 3: registered churn v2" in out  # the row's first line


def test_csv_dry_run_reports_and_changes_nothing(sheet, owner):
    events = AuditEvent.objects.count()
    out = run_csv(sheet, "--dry-run", "--as", "owner")
    assert (
        "line 2: new model churn '2024-01': 2 metric(s), 1 param(s), 2 dataset(s), 1 file(s)" in out
    )
    assert "Dry run: would create 1 model(s) and register 2 version(s)" in out
    assert not RegisteredModel.objects.exists() and AuditEvent.objects.count() == events
    assert stored_keys() == []


def test_csv_errors_name_their_lines_and_nothing_is_imported(tmp_path, owner):
    path = tmp_path / "bad.csv"
    path.write_text(
        "model,version,metric:auc,artifact\n"
        "churn,v1,0.8,\n"
        "churn,v2,high,\n"
        "churn,v3,0.9,missing.bin\n"
        "churn,v1,0.7,\n"
        "../evil,v1,0.5,\n"
    )
    with pytest.raises(CommandError) as failure:
        run_csv(path, "--as", "owner")
    message = str(failure.value)
    assert message.startswith("Nothing imported; 4 error(s):")
    assert "line 3: metrics[0].value: auc must be a number, got 'high'" in message
    assert "line 4: artifact 'missing.bin':" in message
    assert "line 5: churn 'v1' appears again (first on line 2)" in message
    assert "line 6: model '../evil'" in message
    assert not RegisteredModel.objects.exists() and stored_keys() == []


def test_csv_unknown_columns_and_missing_actor_are_refused(tmp_path, owner):
    path = tmp_path / "odd.csv"
    path.write_text("model,version,accuracy\nchurn,v1,0.9\n")
    with pytest.raises(CommandError, match="line 1: unknown column 'accuracy'"):
        run_csv(path)
    path.write_text("model,version\nchurn,v1\n")
    with pytest.raises(CommandError, match="line 2: there is no model 'churn'; name who"):
        run_csv(path)


def test_csv_needs_the_edit_role_on_existing_models(tmp_path, owner, viewer):
    model = factories.registered_model(owner, "churn", visibility="internal")
    path = tmp_path / "v.csv"
    path.write_text("model,version\nchurn,v1\n")
    with pytest.raises(CommandError, match="line 2: viewer may not register versions of churn"):
        run_csv(path, "--as", "viewer")
    out = run_csv(path)  # as the model's owner
    assert model.versions.count() == 1 and "Imported 1 version(s)" in out


def test_csv_skips_labels_already_imported(sheet, owner):
    run_csv(sheet, "--as", "owner")
    out = run_csv(sheet, "--as", "owner")
    assert "line 2: churn '2024-01' exists as v1; skipped." in out
    assert "Imported 0 version(s)" in out and "skipped 2 existing" in out
    assert RegisteredModel.objects.get(name="churn").versions.count() == 2


def test_csv_reuses_a_dataset_registered_under_its_uri(sheet, owner):
    services.dataset_create(actor=owner, name="churn-2023", uri="s3://data/churn-2023.parquet")
    run_csv(sheet, "--as", "owner")
    names = set(Dataset.objects.values_list("name", flat=True))
    assert "churn-2023" in names and "s3://data/churn-2023.parquet" not in names


def test_csv_refuses_a_dataset_name_squatted_with_another_uri(sheet, owner, outsider):
    """Someone registered the sheet's URI as a dataset name, pointing elsewhere: rows naming
    that URI must not link to their record (issue 15, finding 7)."""
    services.dataset_create(actor=outsider, name="s3://data/holdout.parquet", uri="s3://evil/x")
    with pytest.raises(CommandError) as failure:
        run_csv(sheet, "--as", "owner")
    message = str(failure.value)
    assert message.startswith("Nothing imported; 1 error(s):")
    assert (
        "line 2: datasets[1].uri: Dataset 's3://data/holdout.parquet' is registered with URI "
        "'s3://evil/x', not 's3://data/holdout.parquet'" in message
    )
    assert not RegisteredModel.objects.exists() and stored_keys() == []


def test_csv_failure_midway_rolls_back_and_removes_stored_files(sheet, owner, monkeypatch):
    real = services.version_create
    calls = []

    def second_fails(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ValidationError({"files": ["storage is full"]})
        return real(**kwargs)

    monkeypatch.setattr(services, "version_create", second_fails)
    with pytest.raises(CommandError, match="Nothing imported: files: storage is full"):
        run_csv(sheet, "--as", "owner")
    assert not RegisteredModel.objects.exists()
    assert stored_keys() == []


def test_csv_reads_files_only_from_its_own_folder(tmp_path, owner):
    """A spreadsheet cannot make the server store its own files (the secret key, say) as
    artifacts: absolute paths, '..' and links that lead out of the CSV's folder are refused."""
    outside = tmp_path / "server"
    outside.mkdir()
    (outside / "secret_key").write_text("the server's secret")
    sheet_dir = tmp_path / "sheet"
    sheet_dir.mkdir()
    (sheet_dir / "escape").symlink_to(outside)
    (sheet_dir / "key-link").symlink_to(outside / "secret_key")
    path = sheet_dir / "versions.csv"
    path.write_text(
        "model,version,artifact\n"
        f"churn,v1,{outside / 'secret_key'}\n"
        "churn,v2,../server/secret_key\n"
        "churn,v3,escape/secret_key\n"
        "churn,v4,key-link\n"
    )
    with pytest.raises(CommandError) as failure:
        run_csv(path, "--as", "owner")
    message = str(failure.value)
    assert message.startswith("Nothing imported; 4 error(s):")
    for line in (2, 3):
        assert f"line {line}: artifact" in message and "without '..'" in message
    for line in (4, 5):
        assert f"line {line}: artifact" in message
    assert message.count("leads out of the CSV's folder") == 2
    assert not RegisteredModel.objects.exists() and stored_keys() == []
