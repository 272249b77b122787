"""Signatures in the export archive: exported with their versions, restored verbatim on
import when the archive's audit history and the version's content digest vouch for them, the
archive refused otherwise."""

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from approvals import selectors
from approvals import services as reviews
from approvals.models import Signature
from exchange.archive import ExchangeError
from exchange.importing import import_registry
from models_app.models import ModelVersion, RegisteredModel
from tests import factories
from tests.exchange.canonical import canonical_dump
from tests.exchange.test_exchange import (
    export,
    fix_manifest,
    good,
    local_storage,  # noqa: F401 (autouse fixture)
    rewrite,
    state,
    wipe_registry,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_registry(owner, editor, reviewer):
    """fraud v1 approved with a signature and moved to production with one; v2 rejected with
    a signature; a withdrawn review's signature on v3."""
    reviewer.first_name, reviewer.last_name = "Rita", "Okafor"
    reviewer.save()
    owner.first_name, owner.last_name = "Olu", "Adeyemi"
    owner.save()
    fraud = factories.registered_model(owner, "fraud")
    factories.grant(editor, fraud, "edit")
    factories.grant(reviewer, fraud, "review")
    reviews.policy_update(actor=owner, model=fraud, required_approvals=1)
    v1, v2 = good(fraud, editor, files={"m.bin": b"1"}), good(fraud, editor, files={"m.bin": b"2"})
    for v in (v1, v2):
        reviews.version_submit(actor=editor, version=v)
    factories.sign_approval(v1, reviewer, reason="Holds on Q1")
    factories.sign_rejection(v2, reviewer, reason="Recall fell.")
    v1.refresh_from_db()
    factories.sign_alias(v1, owner, note="first release")
    return fraud


def _wipe() -> None:
    """A new, empty registry (on PostgreSQL the signatures' trigger refuses DELETE: it is
    switched off for this transaction, as wipe_registry does for the audit table)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as c:
            c.execute("SET LOCAL session_replication_role = replica")
    Signature.objects.all().delete()
    wipe_registry()


def _signatures() -> list[dict]:
    fields = [
        "model_name", "version_number", "action", "alias_name", "signer_username",
        "printed_name", "signed_at", "meaning", "reason", "content_digest", "audit_seq",
        "audit_hash",
    ]  # fmt: skip
    return list(Signature.objects.order_by("audit_seq").values(*fields))


def test_signatures_round_trip_verbatim_and_still_verify(signed_registry, tmp_path):
    before_signatures = _signatures()
    before = canonical_dump(audit="live")
    archive = export(tmp_path)
    _wipe()
    call_command("import_registry", str(archive), stdout=io.StringIO())

    assert _signatures() == before_signatures
    assert len(before_signatures) == 3
    after = canonical_dump(audit="imported")
    assert after["versions"] == before["versions"] and after["models"] == before["models"]
    v1 = ModelVersion.objects.get(model__name="fraud", number=1)
    shown = selectors.version_signatures(v1)
    assert [(s.action, s.printed_name, s.standing, s.verifies) for s in shown] == [
        ("approve", "Rita Okafor", "valid", True),
        ("promote", "Olu Adeyemi", "valid", True),
    ]
    assert shown[0].review.version_id == v1.pk
    assert shown[1].alias_assignment.alias_name == "production"
    call_command("verify_signatures", stdout=io.StringIO())  # raises if any does not verify


def test_the_export_carries_each_signature_with_its_decision(signed_registry, tmp_path):
    archive = export(tmp_path)
    import tarfile

    with tarfile.open(archive) as tar:
        versions = [json.loads(line) for line in tar.extractfile("versions.jsonl")]
        models = [json.loads(line) for line in tar.extractfile("models.jsonl")]
    v1 = next(v for v in versions if v["number"] == 1)
    [review] = v1["reviews"]
    assert review["signature"]["printed_name"] == "Rita Okafor"
    assert review["signature"]["meaning"] == "Approved for production use"
    assert review["signature"]["content_digest"] == v1["content_digest"] != ""
    [move] = [h for h in models[0]["alias_history"] if h["signature"]]
    assert move["signature"]["alias_name"] == "production"


def _edit_versions(archive: Path, edit) -> None:
    def change(name, data):
        if name != "versions.jsonl":
            return data
        rows = [json.loads(line) for line in data.decode().splitlines()]
        for row in rows:
            edit(row)
        return "".join(json.dumps(r) + "\n" for r in rows).encode()

    rewrite(archive, change)
    fix_manifest(archive)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda row: row["reviews"][0]["signature"].update(meaning="Reviewed — technical"),
            "the meaning differs from the one in the audit event",
        ),
        (
            lambda row: row["reviews"][0]["signature"].update(audit_seq=1),
            "does not match audit event #1",
        ),
        (
            lambda row: row["reviews"][0]["signature"].update(audit_seq=99999),
            "names audit event #99999, which is not in the archive's audit history",
        ),
        (
            lambda row: row.update(content_digest="sha256:" + "1" * 64),
            "but the archive's fraud v1 has sha256:1111",
        ),
        (
            lambda row: row["reviews"][0]["signature"].update(version_number=2),
            "a signature may not move to another record",
        ),
    ],
)
def test_an_archive_whose_signature_does_not_verify_is_refused(
    signed_registry, tmp_path, edit, message
):
    archive = export(tmp_path)
    _edit_versions(archive, lambda row: edit(row) if row["number"] == 1 else None)
    _wipe()
    before = state()
    with pytest.raises(ExchangeError, match="Nothing was imported") as refused:
        import_registry(str(archive))
    assert message in str(refused.value)
    assert state() == before
    assert not RegisteredModel.objects.exists() and not Signature.objects.exists()


def test_a_signed_removal_of_production_round_trips_and_still_verifies(
    signed_registry, owner, tmp_path
):
    reviews.alias_delete(
        actor=owner, model=signed_registry, name="production", note="Retired.",
        signature=factories.signing("Released for use under this alias"),
    )  # fmt: skip
    before_signatures = _signatures()
    assert [s["action"] for s in before_signatures][-1] == "remove"
    archive = export(tmp_path)
    _wipe()
    call_command("import_registry", str(archive), stdout=io.StringIO())

    assert _signatures() == before_signatures
    v1 = ModelVersion.objects.get(model__name="fraud", number=1)
    shown = selectors.version_signatures(v1)
    assert [(s.action, s.verifies) for s in shown] == [
        ("approve", True), ("promote", True), ("remove", True),
    ]  # fmt: skip
    assert shown[2].alias_assignment.kind == "remove" and shown[2].version == v1
    call_command("verify_signatures", stdout=io.StringIO())  # raises if any does not verify
