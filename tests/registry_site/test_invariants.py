"""manage.py check_invariants: a consistent registry passes; each planted violation is named
and the command exits non-zero."""

import io
import os
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from approvals import services as approvals
from approvals.models import Alias
from audit.models import AuditEvent
from models_app import summary
from models_app.models import Artifact, ModelVersion, RegisteredModel, VersionDataset
from models_app.storage import incoming_from_bytes
from registry_site import invariants
from tests import factories
from tests.audit.test_chain import bypass_append_only_trigger
from tests.models_app.test_register import use_local_storage
from tracking import services as tracking
from tracking.models import LatestMetric, LoggedModel, Metric, RunOutput, TrackedFile

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    use_local_storage(settings, tmp_path)


@pytest.fixture
def registry(owner, reviewer):
    """A model with a draft, an approved version holding production, and files."""
    model = factories.registered_model(owner, "fraud")
    factories.grant(reviewer, model, "review")
    draft = factories.version(model, owner, files={"a.bin": b"AAAA"})
    approved = factories.version(
        model,
        owner,
        description="Retrained",
        metrics=[{"name": "auc", "value": 0.9, "split": "test"}],
        datasets=[{"name": "claims", "role": "train"}],
        files={"b.bin": b"BBBBBB"},
    )
    approvals.version_submit(actor=owner, version=approved)
    approvals.review_approve(actor=reviewer, version=approved)
    approved.refresh_from_db()
    approvals.alias_set(actor=owner, model=model, name="production", version=approved)
    return model, draft, approved


def run() -> str:
    out = io.StringIO()
    call_command("check_invariants", stdout=out)
    return out.getvalue()


def violations(**kwargs) -> list[str]:
    return [str(v) for v in invariants.check_all(**kwargs)]


def age(key: str, minutes: int) -> None:
    then = (timezone.now() - timedelta(minutes=minutes)).timestamp()
    os.utime(default_storage.path(key), (then, then))


def test_a_consistent_registry_passes(registry):
    assert violations(grace=timedelta(0)) == []
    assert "All invariants hold." in run()


def test_seeded_demo_data_passes(db):
    call_command("seed_demo", "--quiet-logins", stdout=io.StringIO())
    assert violations(grace=timedelta(0)) == []


def test_a_missing_file_is_named_and_the_command_fails(registry):
    key = Artifact.objects.get(path="a.bin").storage_key
    default_storage.delete(key)
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"1 invariant violation") as e:
        call_command("check_invariants", stdout=out)
    assert e.value.returncode == 1
    assert f"missing_file: fraud v1 a.bin ({key}) is missing from storage" in out.getvalue()


def test_a_file_of_another_size_or_content_is_named(registry):
    a = Artifact.objects.get(path="a.bin")
    b = Artifact.objects.get(path="b.bin")
    with default_storage.open(a.storage_key, "wb") as f:
        f.write(b"AAAAA")
    with default_storage.open(b.storage_key, "wb") as f:
        f.write(b"XXXXXX")
    assert violations() == [
        f"file_mismatch: fraud v1 a.bin ({a.storage_key}) has 5 bytes in storage, 4 recorded",
        f"file_mismatch: fraud v2 b.bin ({b.storage_key}) has another SHA-256 in storage "
        "than recorded",
    ]
    # Without digests only the size is compared.
    assert len(violations(verify_digests=False)) == 1


def test_an_old_stored_file_without_a_row_is_an_orphan_a_young_one_is_not(registry):
    model = registry[0]
    old = default_storage.save(f"artifacts/{model.pk}/stray-old", ContentFile(b"x"))
    default_storage.save(f"artifacts/{model.pk}/stray-new", ContentFile(b"y"))
    age(old, 61)
    assert violations() == [f"orphan_file: {old} is stored but no row names it"]


def test_a_reused_version_number_is_named(registry):
    model = registry[0]
    RegisteredModel.objects.filter(pk=model.pk).update(next_version_number=2)
    assert violations() == ["number_reuse: fraud has version 2 but would give out 2 next"]


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="drops a constraint")
def test_two_versions_with_one_number_are_named(registry):
    model, draft, approved = registry
    with connection.cursor() as c:
        c.execute("SET CONSTRAINTS ALL IMMEDIATE")
        c.execute("ALTER TABLE models_app_modelversion DROP CONSTRAINT version_unique_number")
    ModelVersion.objects.filter(pk=draft.pk).update(number=approved.number)
    assert "duplicate_number: fraud has 2 versions numbered 2" in violations()


def test_a_dataset_link_naming_another_model_than_its_versions_is_named(registry, owner):
    model, draft, approved = registry
    link = VersionDataset.objects.get(version=approved)
    assert link.model_id == model.pk  # (as the version service wrote it)
    other = factories.registered_model(owner, "other")
    VersionDataset.objects.filter(pk=link.pk).update(model=other)
    assert violations() == ["wrong_link_model: dataset claims's link to fraud v2 names model other"]


def test_a_protected_alias_on_an_unapproved_version_is_named(registry):
    model, draft, approved = registry
    Alias.objects.filter(model=model, name="production").update(version=draft)
    assert violations() == [
        "alias_holder: fraud@production names version 1, which is draft, not approved",
        "audit_missing: fraud@production holds v1, its last move recorded v2",
    ]


def test_a_version_without_its_events_is_named(registry, owner):
    model, draft, approved = registry
    ModelVersion.objects.filter(pk=draft.pk).update(status=ModelVersion.Status.REJECTED)
    sneaked = ModelVersion.objects.create(model=model, number=7, created_by=owner)
    RegisteredModel.objects.filter(pk=model.pk).update(next_version_number=8)
    summary.recompute([model.pk])  # (what this test is not about)
    assert violations() == [
        "audit_missing: fraud v1 is rejected without review.rejected or "
        "version.revalidation_rejected",
        f"audit_missing: fraud v{sneaked.number} has no version.created event",
    ]


def test_an_alias_moved_without_an_event_is_named(registry, owner):
    model, draft, approved = registry
    Alias.objects.create(model=model, name="shadow", version=draft)
    assert violations() == ["audit_missing: fraud@shadow holds v1 without a move"]


def test_a_broken_audit_chain_is_named(registry):
    bypass_append_only_trigger()
    AuditEvent.objects.filter(seq=2).update(actor_username="mallory")
    assert violations() == ["audit_chain: event #2 was modified"]


def test_imported_versions_are_not_asked_for_local_events(tmp_path, registry, owner):
    """Their history is the imported batch; a consistent import passes."""
    archive = tmp_path / "export.tar"
    call_command("export_registry", str(archive), stdout=io.StringIO())
    RegisteredModel.objects.filter(name="fraud").update(
        name="fraud-old", name_key="fraud-old", slug="fraud-old"
    )
    call_command("import_registry", str(archive), stdout=io.StringIO())
    assert violations(grace=timedelta(0)) == []


# ---------------------------------------------------------------------------------------------
# Tracking


@pytest.fixture
def tracked(owner):
    """An experiment with a run (metric histories whose latest points need MLflow's ranking:
    a higher step logged earlier, a number and a NaN at one step and time), a logged model from
    the run recorded as its output, and a file under the run."""
    experiment = tracking.experiment_create(actor=owner, name="churn")
    run = tracking.run_create(actor=owner, experiment=experiment)
    M = tracking.MetricIn
    tracking.run_log_batch(
        actor=owner,
        run=run,
        metrics=[
            M(key="auc", value=0.93, timestamp=100, step=2),
            M(key="auc", value=0.91, timestamp=500, step=1),
            M(key="loss", value=float("nan"), timestamp=7, step=3),
            M(key="loss", value=0.2, timestamp=7, step=3),
            M(key="loss", value=0.1, timestamp=7, step=3),
        ],
    )
    tracking.run_log_batch(
        actor=owner, run=run, metrics=[M(key="auc", value=0.5, timestamp=900, step=1)]
    )
    model = tracking.logged_model_create(
        actor=owner, experiment=experiment, name="model", source_run=run
    )
    tracking.run_log_outputs(actor=owner, run=run, models=[(model.pk, 0)])
    tracking.tracked_file_put(
        actor=owner, owner=run, path="notes.txt", incoming=incoming_from_bytes("n", b"notes")
    )
    other = tracking.experiment_create(actor=owner, name="elsewhere")
    other_run = tracking.run_create(actor=owner, experiment=other)
    other_model = tracking.logged_model_create(
        actor=owner, experiment=other, name="model", source_run=other_run
    )
    return SimpleNamespace(run=run, model=model, other_run=other_run, other_model=other_model)


def test_consistent_tracking_data_passes(tracked):
    latest = dict(LatestMetric.objects.filter(run=tracked.run).values_list("key", "value"))
    assert latest == {"auc": 0.93, "loss": 0.2}  # what the services kept, by MLflow's rank
    assert invariants.check_tracking() == []


def test_a_metric_count_that_is_not_the_historys_length_is_named(tracked):
    counts = dict(LatestMetric.objects.filter(run=tracked.run).values_list("key", "history_count"))
    assert counts == {"auc": 3, "loss": 3}  # what the services counted, over two batches
    LatestMetric.objects.filter(run=tracked.run, key="auc").update(history_count=2)
    Metric.objects.create(run=tracked.run, key="loss", value=0.3, timestamp=1, step=0)
    run_id = tracked.run.pk
    assert violations() == [
        f"metric_count: run {run_id} metric 'auc': 2 values counted; the history holds 3",
        f"metric_count: run {run_id} metric 'loss': 3 values counted; the history holds 4",
    ]


def test_a_latest_metric_that_is_not_the_historys_latest_point_is_named(tracked):
    LatestMetric.objects.filter(run=tracked.run, key="auc").update(value=0.5, step=1)
    LatestMetric.objects.filter(run=tracked.run, key="loss").update(is_nan=True, value=0)
    run_id = tracked.run.pk
    assert [str(v) for v in invariants.check_tracking()] == [
        f"latest_metric: run {run_id} metric 'auc': latest 0.5 at step 1, time 100; the history "
        "says 0.93 at step 2, time 100",
        f"latest_metric: run {run_id} metric 'loss': latest NaN at step 3, time 7; the history "
        "says 0.2 at step 3, time 7",
    ]


def test_a_metric_without_its_latest_value_and_a_latest_value_without_history_are_named(
    tracked,
):
    run_id = tracked.run.pk
    LatestMetric.objects.filter(run=tracked.run, key="auc").delete()
    Metric.objects.filter(run=tracked.run, key="loss").delete()
    assert violations() == [
        f"latest_metric: run {run_id} metric 'loss' has a latest value but no history",
        f"latest_metric: run {run_id} metric 'auc' has a history but no latest value",
    ]


def test_a_run_output_of_another_experiment_is_named(tracked):
    RunOutput.objects.create(run=tracked.run, logged_model=tracked.other_model, step=0)
    run, model = tracked.run, tracked.other_model
    assert violations() == [
        f"output_elsewhere: run {run.pk} (experiment {run.experiment_id}) outputs logged model "
        f"{model.pk} of experiment {model.experiment_id}"
    ]


def test_a_logged_model_whose_source_run_is_in_another_experiment_is_named(tracked):
    LoggedModel.objects.filter(pk=tracked.model.pk).update(source_run=tracked.other_run)
    model, run = tracked.model, tracked.other_run
    assert violations() == [
        f"source_run_elsewhere: logged model {model.pk} (experiment {model.experiment_id}) "
        f"comes from run {run.pk} of experiment {run.experiment_id}"
    ]


def _bypass_tracked_file_owner_constraint() -> None:
    """Simulate rows written past the database's check (an old bug, a manual fix gone wrong)."""
    with connection.cursor() as c:
        if connection.vendor == "postgresql":
            c.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending checks before ALTER TABLE
            c.execute(
                "ALTER TABLE tracking_trackedfile DROP CONSTRAINT tracked_file_one_owner"
            )  # rolled back with the test's transaction
        else:
            c.execute("PRAGMA ignore_check_constraints = ON")


def test_a_tracked_file_with_no_owner_or_two_is_named(tracked):
    stored = TrackedFile.objects.get(path="notes.txt")
    _bypass_tracked_file_owner_constraint()
    try:
        TrackedFile.objects.filter(pk=stored.pk).update(run=None)
        two = TrackedFile.objects.create(
            run=tracked.run,
            logged_model=tracked.model,
            path="both.txt",
            storage_key="tracking/both",
            size=1,
            sha256="0" * 64,
            uploaded_by=tracked.run.creator,
            uploaded_at=timezone.now(),
        )
        found = [str(v) for v in invariants.check_tracked_file_owners()]
    finally:
        if connection.vendor == "sqlite":
            with connection.cursor() as c:
                c.execute("PRAGMA ignore_check_constraints = OFF")
    assert found == [
        f"tracked_file_owner: tracked file #{stored.pk} notes.txt ({stored.storage_key}) has "
        "no run or logged model",
        f"tracked_file_owner: tracked file #{two.pk} both.txt (tracking/both) has run "
        f"{tracked.run.pk} and logged model {tracked.model.pk}",
    ]


def test_the_command_names_a_tracking_violation_and_fails(tracked):
    LatestMetric.objects.filter(run=tracked.run, key="auc").update(value=0.1)
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"1 invariant violation") as e:
        call_command("check_invariants", stdout=out)
    assert e.value.returncode == 1
    assert f"latest_metric: run {tracked.run.pk} metric 'auc': latest 0.1" in out.getvalue()
