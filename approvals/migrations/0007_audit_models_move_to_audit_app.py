"""AuditEvent and AuditChainHead now belong to the audit app (audit 0001): they leave this app's
state, their tables stay. Existing content types follow them, so anything that refers to
them (admin log entries, permissions) keeps working."""

from django.db import migrations

MOVED = ["auditevent", "auditchainhead"]


def _relabel(apps, old: str, new: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label=new, model__in=MOVED).exists():
        ContentType.objects.filter(app_label=old, model__in=MOVED).update(app_label=new)


def move_content_types(apps, schema_editor):
    _relabel(apps, "approvals", "audit")


def move_content_types_back(apps, schema_editor):
    _relabel(apps, "audit", "approvals")


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0006_audit_indexes"),
        ("audit", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    state_operations = [
        migrations.DeleteModel(
            name="AuditChainHead",
        ),
        migrations.RemoveIndex(
            model_name="auditevent",
            name="audit_model_seq_idx",
        ),
        migrations.RemoveIndex(
            model_name="auditevent",
            name="audit_target_idx",
        ),
        migrations.RemoveIndex(
            model_name="auditevent",
            name="audit_action_idx",
        ),
        migrations.RemoveConstraint(
            model_name="auditevent",
            name="audit_unique_hash",
        ),
        migrations.DeleteModel(
            name="AuditEvent",
        ),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=state_operations, database_operations=[]
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
