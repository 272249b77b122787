"""The audit chain's head in a row of its own, started from the newest event already logged."""

from django.db import migrations, models

GENESIS_HASH = "0" * 64  # approvals.audit.GENESIS_HASH, fixed here as migrations must be


def start_head(apps, schema_editor):
    AuditEvent = apps.get_model("approvals", "AuditEvent")
    AuditChainHead = apps.get_model("approvals", "AuditChainHead")
    newest = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, hash_ = newest if newest else (0, GENESIS_HASH)
    AuditChainHead.objects.create(pk=1, seq=seq, hash=hash_)


class Migration(migrations.Migration):
    dependencies = [("approvals", "0004_webhooks")]

    operations = [
        migrations.CreateModel(
            name="AuditChainHead",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("seq", models.PositiveBigIntegerField(default=0)),
                ("hash", models.CharField(max_length=64)),
            ],
        ),
        migrations.RunPython(start_head, migrations.RunPython.noop),
    ]
