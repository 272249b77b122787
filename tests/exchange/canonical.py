"""The registry as one comparable document: every record the export writes, keyed by names,
with each file's stored bytes re-hashed. Two registries hold the same catalogue exactly when
their dumps are equal (the round-trip test compares them)."""

from django.contrib.auth import get_user_model

from audit.models import AuditEvent
from exchange import records
from exchange.models import ImportedAuditEvent
from models_app import storage
from models_app.models import Dataset


def canonical_dump(*, audit: str = "live") -> dict:
    """``audit``: "live" for this registry's own chain, "imported" for the history that came
    with imported archives."""
    names = records.Names()
    models, versions = [], []
    for model in records.models_for_export():
        record = records.model_record(model, names)
        record.pop("export_id")
        models.append(record)
        for version in records.versions_for_export(model):
            record = records.version_record(version, names)
            for artifact, row in zip(record["artifacts"], version.artifacts.all(), strict=True):
                artifact["stored"] = storage.stored_digest(row.storage_key)
            versions.append(record)
    datasets = [
        records.dataset_record(d, names) for d in Dataset.objects.select_related("created_by")
    ]
    if audit == "live":
        events = AuditEvent.objects.order_by("seq")
    else:
        events = ImportedAuditEvent.objects.order_by("batch", "seq")
    users = get_user_model().objects.filter(username__in=names.users).order_by("username")
    return {
        "models": models,
        "versions": versions,
        "datasets": sorted(datasets, key=lambda d: d["name"]),
        "users": [records.user_record(u) for u in users],
        "groups": sorted(names.groups),
        "audit": [records.audit_record(e) for e in events],
    }
