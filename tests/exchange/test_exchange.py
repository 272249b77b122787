"""manage.py export_registry and import_registry: a registry moves whole, or not at all."""

import io
import json
import tarfile
import tracemalloc
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from guardian.models import GroupObjectPermission, UserObjectPermission

from approvals import services as reviews
from approvals.models import Alias, Comment, Review
from audit.chain import verify_chain
from audit.models import AuditChainHead, AuditEvent
from exchange import importing
from exchange.archive import ExchangeError
from exchange.exporting import export_registry
from exchange.history import verify_imported
from exchange.importing import import_registry
from exchange.models import ImportedAuditEvent, RegistryImport
from models_app import services, storage
from models_app.metadata import VersionMetadata, parse_metadata
from models_app.models import (
    Dataset,
    ModelFramework,
    ModelVersion,
    RegisteredModel,
    ReservedName,
    VersionParent,
)
from registry_site.invariants import check_frameworks, check_summaries
from tests import factories
from tests.exchange.canonical import canonical_dump
from tests.models_app.test_register import stored_keys, use_local_storage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    return use_local_storage(settings, tmp_path)


def good(model, actor, **extra):
    return factories.version(
        model,
        actor,
        description="Retrained on Q1",
        metrics=[{"name": "auc", "value": 0.9, "split": "test", "step": 12},
                 {"name": "loss", "value": 0.2}],
        datasets=[{"name": "claims-2025", "role": "train", "digest": "sha256:abc", "rows": 10},
                  {"name": "claims-holdout", "role": "test"}],
        **extra,
    )  # fmt: skip


@pytest.fixture
def registry(owner, editor, reviewer, viewer):
    """A registry with a bit of everything: grants to people and teams, a policy and a card
    template, reviews with an override and a rejection, comments, aliases moved and rolled
    back, lineage across models, model cards and inspected files."""
    risk = factories.team("model-risk", reviewer)
    fraud = factories.registered_model(
        owner, "fraud", description="Flags *fraud*.", team=risk, tags={"domain": "payments"},
        metric_directions={"loss": False},
    )  # fmt: skip
    factories.grant(editor, fraud, "edit")
    factories.grant(risk, fraud, "review")
    factories.grant(viewer, fraud, "view")
    reviews.policy_update(
        actor=owner, model=fraud, required_approvals=1, approval_valid_days=90,
        metric_gates=[{"metric": "auc", "split": "test", "threshold": 0.95}],
    )  # fmt: skip
    services.card_template_update(actor=owner, model=fraud, required_sections=["intended_use"])
    files = {"model.bin": b"weights-1" * 100, "conf/labels.json": b"[]"}
    v1 = good(fraud, editor, files=files, params={"depth": 6}, tags={"stage": "candidate"},
              requirements="numpy>=2\n")  # fmt: skip
    services.card_update(
        actor=editor, version=v1, sections={"intended_use": "Scoring card payments."}
    )
    v2 = good(fraud, editor, files={"model.bin": b"weights-2" * 100},
              parents=[{"model": "fraud", "version": 1, "relation": "retrained"}])  # fmt: skip
    v3 = good(fraud, editor, files={"model.bin": b"weights-3"})
    for v in (v1, v2, v3):
        reviews.version_submit(actor=editor, version=v)
    reviews.review_approve(
        actor=owner, version=v1, reason="ok", override_reason="AUC gate set too high"
    )
    reviews.review_approve(actor=owner, version=v2, reason="", override_reason="again")
    reviews.review_reject(actor=reviewer, version=v3, reason="Recall fell.")
    later = timezone.now() + timedelta(days=91)  # approvals expire: marked, one revalidated
    reviews.version_mark_revalidation_due(version=v1, now=later)
    reviews.version_mark_revalidation_due(version=v2, now=later)
    reviews.review_revalidate(
        actor=owner, version=v1, decision="approve", override_reason="AUC gate still too high"
    )
    first = reviews.comment_add(actor=reviewer, version=v2, body="Why the jump?", metric="auc")
    reviews.comment_add(actor=editor, version=v2, body="More data.", parent=first)
    reviews.alias_set(actor=owner, model=fraud, name="production", version=v1, note="first")
    reviews.alias_set(actor=owner, model=fraud, name="production", version=v2, note="second")
    reviews.alias_rollback(actor=owner, model=fraud, reason="v2 misbehaves")
    reviews.alias_set(actor=editor, model=fraud, name="champion", version=v2)
    reviews.alias_delete(actor=editor, model=fraud, name="champion")
    router = factories.registered_model(owner, "router", visibility="internal")
    parent = {"model": "fraud", "version": 2, "relation": "fine_tuned"}
    factories.version(router, owner, files={"head.safetensors": b"\x00" * 8}, parents=[parent])
    services.dataset_create(actor=viewer, name="unused-dataset", uri="s3://x/y")
    return fraud


def wipe_registry() -> None:
    """Empty every table the export covers, storage included (a new, empty registry)."""
    if connection.vendor == "postgresql":  # the audit table refuses DELETE: simulate a new db
        with connection.cursor() as c:
            c.execute("SET LOCAL session_replication_role = replica")
    AuditEvent.objects.all().delete()
    AuditChainHead.objects.all().delete()
    Alias.objects.all().delete()
    VersionParent.objects.all().delete()
    Review.objects.all().delete()
    Comment.objects.filter(parent__isnull=False).delete()
    Comment.objects.all().delete()
    RegisteredModel.objects.all().delete()
    Dataset.objects.all().delete()
    UserObjectPermission.objects.all().delete()
    GroupObjectPermission.objects.all().delete()
    User.objects.all().delete()
    Group.objects.all().delete()
    for key in stored_keys():
        default_storage.delete(key)


def export(tmp_path: Path, *models: str, name="registry.tar") -> Path:
    out = tmp_path / name
    args = ["export_registry", str(out)] + (["--models", *models] if models else [])
    call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())
    return out


def state() -> dict:
    """What must not change when an import is refused."""
    return {
        "models": RegisteredModel.objects.count(),
        "versions": ModelVersion.objects.count(),
        "datasets": Dataset.objects.count(),
        "users": User.objects.count(),
        "events": AuditEvent.objects.count(),
        "imports": RegistryImport.objects.count(),
        "imported_events": ImportedAuditEvent.objects.count(),
        "keys": stored_keys(),
    }


def rewrite(archive: Path, change) -> None:
    """Rewrite an archive, passing each member's bytes through ``change(name, data)``."""
    members = []
    with tarfile.open(archive) as tar:
        for m in tar.getmembers():
            members.append((m, tar.extractfile(m).read()))
    with tarfile.open(archive, "w") as tar:
        for m, data in members:
            data = change(m.name, data)
            m.size = len(data)
            tar.addfile(m, io.BytesIO(data))


def fix_manifest(archive: Path) -> None:
    """Recompute the manifest's checksums, as a careful forger would."""
    import hashlib

    contents = {}
    with tarfile.open(archive) as tar:
        for m in tar.getmembers():
            contents[m.name] = tar.extractfile(m).read()

    def change(name, data):
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        for entry in manifest["files"]:
            entry["size"] = len(contents[entry["name"]])
            entry["sha256"] = hashlib.sha256(contents[entry["name"]]).hexdigest()
        return json.dumps(manifest).encode()

    rewrite(archive, change)


# ---------------------------------------------------------------------------------------------
# The round trip


def test_export_wipe_import_reproduces_the_registry_exactly(registry, tmp_path, capsys):
    before = canonical_dump(audit="live")
    archive = export(tmp_path)
    wipe_registry()
    assert not RegisteredModel.objects.exists() and not stored_keys()

    out = io.StringIO()
    call_command("import_registry", str(archive), stdout=out)

    after = canonical_dump(audit="imported")
    for part in ("models", "versions", "datasets", "users", "groups", "audit"):
        assert after[part] == before[part], part
    assert "Imported 2 model(s), 4 version(s), 5 file(s)" in out.getvalue()
    call_command("verify_audit")
    assert "Audit chain OK: 1 events verified" in capsys.readouterr().out
    assert [r.ok for r in verify_imported()] == [True]
    imported = AuditEvent.objects.get(action="registry.imported")
    assert imported.after["audit_head_hash"] == before["audit"][-1]["hash"]


def test_imported_people_get_no_password_and_no_staff_rights(registry, tmp_path, superuser):
    archive = export(tmp_path)
    wipe_registry()
    import_registry(str(archive))
    owner = User.objects.get(username="owner")
    assert not owner.has_usable_password()
    assert not User.objects.filter(is_staff=True).exists()
    assert not User.objects.filter(is_superuser=True).exists()


def test_round_trip_of_a_gzipped_archive_on_an_existing_registry(registry, tmp_path, owner):
    archive = export(tmp_path, "fraud", name="fraud.tar.gz")
    assert archive.read_bytes()[:2] == b"\x1f\x8b"
    services.model_delete(actor=owner, model=RegisteredModel.objects.get(name="router"))
    services.model_delete(actor=owner, model=registry)
    ReservedName.objects.all().delete()  # their names released by an administrator
    events = AuditEvent.objects.count()
    report = import_registry(str(archive), actor=owner)
    assert report.models == ["fraud"]
    assert verify_chain().ok and AuditEvent.objects.count() == events + 1
    fraud = RegisteredModel.objects.get(name="fraud")
    assert fraud.versions.count() == 3
    assert Alias.objects.get(model=fraud, name="production").version.number == 1


def registered_from_a_logged_model(owner) -> tuple[str, str]:
    """A version registered from an MLflow run's logged model; its run and logged model ids."""
    run_id, logged_model = "a" * 32, "m-" + "b" * 32
    services.version_create(
        actor=owner,
        model=factories.registered_model(owner, "churn"),
        metadata=parse_metadata({"source_run": run_id}),
        source_model=logged_model,
    )
    return run_id, logged_model


def test_a_version_keeps_its_run_and_logged_model_through_the_round_trip(owner, tmp_path):
    run_id, logged_model = registered_from_a_logged_model(owner)
    archive = export(tmp_path)
    wipe_registry()
    import_registry(str(archive))
    assert ModelVersion.objects.values_list("source_run", "source_model").get() == (
        run_id,
        logged_model,
    )


def test_an_archive_from_before_versions_kept_their_logged_model_imports_without_it(
    owner, tmp_path
):
    run_id, _ = registered_from_a_logged_model(owner)
    archive = export(tmp_path)

    def drop_source_model(name, data):
        if name != "versions.jsonl":
            return data
        records = [json.loads(line) for line in data.decode().splitlines()]
        for record in records:
            del record["source_model"]
        return "".join(json.dumps(r) + "\n" for r in records).encode()

    rewrite(archive, drop_source_model)
    fix_manifest(archive)
    wipe_registry()
    import_registry(str(archive))
    assert ModelVersion.objects.values_list("source_run", "source_model").get() == (run_id, "")


# ---------------------------------------------------------------------------------------------
# Refusals: nothing changes, the message names what failed


def test_an_artifact_with_one_changed_byte_is_refused(registry, tmp_path):
    archive = export(tmp_path)
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
        member = next(f["name"] for f in manifest["files"] if f["kind"] == "artifact")
        offset = tar.getmember(member).offset_data
    raw = bytearray(archive.read_bytes())
    raw[offset] ^= 0x01
    archive.write_bytes(bytes(raw))
    wipe_registry()
    before = state()
    with pytest.raises(
        CommandError, match=r"conf/labels.json of fraud v1 .* does not match its sha"
    ):
        call_command("import_registry", str(archive))
    assert state() == before


def test_an_edited_audit_event_is_refused_even_with_a_recomputed_manifest(registry, tmp_path):
    archive = export(tmp_path)

    def edit_third_event(name, data):
        if name != "audit.jsonl":
            return data
        lines = data.decode().splitlines()
        event = json.loads(lines[2])
        event["actor_username"] = "mallory"
        lines[2] = json.dumps(event, sort_keys=True)
        return ("\n".join(lines) + "\n").encode()

    rewrite(archive, edit_third_event)
    with pytest.raises(ExchangeError, match=r"^audit.jsonl does not match the manifest"):
        import_registry(str(archive))
    fix_manifest(archive)
    wipe_registry()
    before = state()
    with pytest.raises(
        CommandError, match=r"audit history does not verify: audit event #3 .* was modified"
    ):
        call_command("import_registry", str(archive))
    assert state() == before


def test_a_deleted_audit_event_is_refused(registry, tmp_path):
    archive = export(tmp_path)

    def drop_fifth(name, data):
        if name != "audit.jsonl":
            return data
        lines = data.decode().splitlines()
        return ("\n".join(lines[:4] + lines[5:]) + "\n").encode()

    rewrite(archive, drop_fifth)
    fix_manifest(archive)
    wipe_registry()
    with pytest.raises(ExchangeError, match="audit event #5 is missing"):
        import_registry(str(archive))
    assert not RegisteredModel.objects.exists()


def test_a_clashing_model_fails_by_default_and_is_kept_with_skip(registry, tmp_path, owner):
    archive = export(tmp_path)
    services.model_delete(actor=owner, model=RegisteredModel.objects.get(name="router"))
    ReservedName.objects.filter(name="router").delete()  # released (see the next test)
    before = state()
    with pytest.raises(CommandError, match="A model named 'fraud' exists in this registry"):
        call_command("import_registry", str(archive))
    assert state() == before

    out = io.StringIO()
    call_command("import_registry", str(archive), "--on-conflict", "skip", stdout=out)
    assert "Imported 1 model(s), 1 version(s)" in out.getvalue()
    assert "kept existing fraud" in out.getvalue()
    router = RegisteredModel.objects.get(name="router")
    parent = router.versions.get().parent_links.get().parent
    assert (parent.model_id, parent.number) == (registry.pk, 2)  # linked to the kept model


def test_a_link_to_a_deleted_parent_goes_out_and_comes_back_as_deleted(registry, tmp_path, owner):
    """Issue 15, finding 3: a parent's model may be deleted whoever links to it; the link
    keeps its name and number, and so does the archive (marked deleted)."""
    scratch = factories.registered_model(owner, "scratch")
    factories.version(scratch, owner)
    router = RegisteredModel.objects.get(name="router")
    parents = [{"model": "scratch", "version": 1, "relation": "distilled"},
               {"model": "fraud", "version": 2, "relation": "fine_tuned"}]  # fmt: skip
    factories.version(router, owner, parents=parents)
    services.model_delete(actor=owner, model=scratch)
    before = canonical_dump(audit="live")
    archive = export(tmp_path)
    wipe_registry()

    call_command("import_registry", str(archive), stdout=io.StringIO())

    assert canonical_dump(audit="imported")["versions"] == before["versions"]
    links = VersionParent.objects.filter(child__model__name="router", child__number=2)
    assert sorted(
        (link.parent_model_name, link.parent_number, link.parent is None) for link in links
    ) == [("fraud", 2, False), ("scratch", 1, True)]


def test_a_reserved_name_is_a_conflict_until_it_is_released(registry, tmp_path, owner, superuser):
    archive = export(tmp_path, "router")
    services.model_delete(actor=owner, model=RegisteredModel.objects.get(name="router"))
    before = state()
    with pytest.raises(CommandError, match="The name 'router' is reserved in this registry"):
        call_command("import_registry", str(archive))
    assert state() == before
    out = io.StringIO()
    call_command("import_registry", str(archive), "--on-conflict", "skip", stdout=out)
    assert not RegisteredModel.objects.filter(name="router").exists()

    call_command("release_name", "router", "--by", superuser.username, stdout=out)
    call_command("import_registry", str(archive), stdout=out)
    assert RegisteredModel.objects.filter(name="router").exists()


def test_a_parent_neither_exported_nor_present_is_refused(registry, tmp_path):
    archive = export(tmp_path, "router")
    wipe_registry()
    before = state()
    with pytest.raises(ExchangeError, match="router v1 was made from fraud v2, which is neither"):
        import_registry(str(archive))
    assert state() == before


def test_a_dataset_with_another_digest_here_is_a_conflict(registry, tmp_path, owner):
    archive = export(tmp_path, "fraud")
    services.model_delete(actor=owner, model=RegisteredModel.objects.get(name="router"))
    services.model_delete(actor=owner, model=registry)
    ReservedName.objects.all().delete()  # their names released by an administrator
    Dataset.objects.filter(name="claims-2025").update(digest="sha256:other")
    before = state()
    with pytest.raises(ExchangeError, match="Dataset 'claims-2025' is registered here with digest"):
        import_registry(str(archive))
    assert state() == before


@pytest.mark.parametrize(
    ("field", "here"), [("uri", "s3://evil/claims"), ("digest", "")]
)  # fmt: skip
def test_a_dataset_here_without_the_archives_uri_or_digest_is_a_conflict(
    registry, tmp_path, owner, field, here
):
    """The archive's versions were reviewed against their datasets' values: they are not
    linked to a record of the same name that says otherwise (issue 15, finding 7)."""
    Dataset.objects.filter(name="claims-2025").update(uri="s3://data/claims")
    archive = export(tmp_path, "fraud")
    services.model_delete(actor=owner, model=RegisteredModel.objects.get(name="router"))
    services.model_delete(actor=owner, model=registry)
    ReservedName.objects.all().delete()  # their names released by an administrator
    Dataset.objects.filter(name="claims-2025").update(**{field: here})
    before = state()
    label = {"uri": "URI", "digest": "digest"}[field]
    with pytest.raises(
        ExchangeError, match=f"Dataset 'claims-2025' is registered here with {label} "
    ):
        import_registry(str(archive))
    assert state() == before


def test_a_datasets_team_travels_with_it(registry, tmp_path, owner):
    Dataset.objects.filter(name="claims-2025").update(team=factories.team("data", owner))
    archive = export(tmp_path)
    wipe_registry()
    import_registry(str(archive))
    assert Dataset.objects.get(name="claims-2025").team.name == "data"
    assert Dataset.objects.get(name="claims-holdout").team is None


def test_a_file_that_is_not_an_archive_is_refused(tmp_path):
    bogus = tmp_path / "x.tar"
    bogus.write_bytes(b"not a tar at all")
    with pytest.raises(CommandError, match="is not a readable archive"):
        call_command("import_registry", str(bogus))


def test_an_archive_with_an_unlisted_member_is_refused(registry, tmp_path):
    archive = export(tmp_path)
    with tarfile.open(archive, "a") as tar:
        info = tarfile.TarInfo("../../evil.sh")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"boom"))
    with pytest.raises(ExchangeError, match="which its manifest does not list"):
        import_registry(str(archive))
    assert not (tmp_path.parent / "evil.sh").exists()


def test_files_stored_before_a_failing_transaction_are_removed(registry, tmp_path, monkeypatch):
    archive = export(tmp_path)
    wipe_registry()

    def fail(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(importing, "write_import", fail)
    with pytest.raises(RuntimeError):
        import_registry(str(archive))
    assert stored_keys() == []
    assert not RegisteredModel.objects.exists()


# ---------------------------------------------------------------------------------------------
# Export


def test_export_of_named_models_carries_only_their_data(registry, tmp_path):
    archive = export(tmp_path, "FRAUD")
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
        datasets = tar.extractfile("datasets.jsonl").read().decode()
        events = [json.loads(line) for line in tar.extractfile("audit.jsonl").read().splitlines()]
        users = tar.extractfile("users.jsonl").read().decode()
    assert manifest["scope"] == "models" and manifest["models"] == ["fraud"]
    assert "unused-dataset" not in datasets and "claims-2025" in datasets
    assert {e["model_id"] for e in events} == {registry.pk}
    assert "password" not in users


def test_export_refuses_an_unknown_model_and_writes_nothing(registry, tmp_path):
    with pytest.raises(CommandError, match="No model named 'nope'"):
        call_command("export_registry", str(tmp_path / "x.tar"), "--models", "nope")
    assert not list(tmp_path.glob("x.tar*"))


def test_export_stops_on_a_file_changed_in_storage(registry, tmp_path):
    artifact = registry.versions.get(number=3).artifacts.get()
    default_storage.delete(artifact.storage_key)
    default_storage.save(artifact.storage_key, io.BytesIO(b"weights-X"))
    with pytest.raises(CommandError, match="model.bin of fraud v3 no longer matches"):
        call_command("export_registry", str(tmp_path / "x.tar"))
    assert not list(tmp_path.glob("x.tar*"))


def test_export_streams_large_files_with_bounded_memory(owner, tmp_path):
    model = factories.registered_model(owner, "big")
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for i in range(32):
            f.write(bytes([i]) * (1024 * 1024))
    incoming = storage.incoming_from_path("weights.bin", str(big))
    services.version_create(actor=owner, model=model, metadata=VersionMetadata(), files=[incoming])
    tracemalloc.start()
    try:
        export_registry(str(tmp_path / "big.tar"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"peak {peak:,} bytes for a 32 MiB file"


def test_imported_history_tampered_later_is_detected(registry, tmp_path, capsys):
    archive = export(tmp_path)
    wipe_registry()
    import_registry(str(archive))
    call_command("import_registry", "--verify-history")
    assert "Imported audit history OK: 1 import(s)" in capsys.readouterr().out
    ImportedAuditEvent.objects.filter(seq=2).update(reason="edited later")
    with pytest.raises(CommandError, match="1 of 1 imported histories do not verify"):
        call_command("import_registry", "--verify-history")
    assert "event #2" in capsys.readouterr().err


def test_import_inspects_files_again_instead_of_trusting_the_archive(owner, tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("true",))

    model = factories.registered_model(owner, "fraud")
    factories.version(model, owner, files={"model.pkl": pickle.dumps(Evil())})
    archive = export(tmp_path)

    def claim_safe(name, data):
        if name != "versions.jsonl":
            return data
        record = json.loads(data)
        record["artifacts"][0].update(dangerous=False, findings=[], inspection={})
        return (json.dumps(record) + "\n").encode()

    rewrite(archive, claim_safe)
    fix_manifest(archive)
    wipe_registry()
    import_registry(str(archive))
    artifact = RegisteredModel.objects.get(name="fraud").versions.get().artifacts.get()
    assert artifact.dangerous and "posix.system" in artifact.inspection["imports"]


def test_export_to_a_missing_folder_is_refused(registry, tmp_path):
    with pytest.raises(CommandError, match="is not a folder"):
        call_command("export_registry", str(tmp_path / "nowhere" / "x.tar"))


def test_an_import_gives_each_model_the_summary_of_its_versions(registry, tmp_path):
    archive = export(tmp_path)
    wipe_registry()
    import_registry(str(archive))
    fraud = RegisteredModel.objects.get(name="fraud")
    assert (fraud.latest_number, fraud.version_count) == (3, 3)
    assert (fraud.approved_count, fraud.rejected_count, fraud.draft_count) == (2, 1, 0)
    router = RegisteredModel.objects.get(name="router")
    assert (router.latest_number, router.version_count, router.draft_count) == (1, 1, 1)
    assert check_summaries() == []


def test_an_import_gives_each_model_the_frameworks_of_its_versions(registry, tmp_path, owner):
    def frameworks():
        return set(ModelFramework.objects.values_list("model__name", "framework", "versions"))

    fraud = RegisteredModel.objects.get(name="fraud")
    factories.version(fraud, fraud.owner, framework="XGBoost")
    factories.version(fraud, fraud.owner, framework="XGBoost")
    before = frameworks()
    assert ("fraud", "XGBoost", 2) in before
    archive = export(tmp_path)
    wipe_registry()
    import_registry(str(archive))
    assert frameworks() == before
    assert check_frameworks() == []
