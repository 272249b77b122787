"""Versions remember the MLflow logged model they were registered from (MLflow 3's
``ModelVersion.model_id``). Versions registered before: taken from their
``version.registered_from_run`` audit event, which names it."""

from django.db import migrations, models


def fill(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    ModelVersion = apps.get_model("models_app", "ModelVersion")
    events = AuditEvent.objects.filter(
        action="version.registered_from_run", target_type="modelversion"
    ).values_list("target_id", "after")
    logged_models = {
        int(target_id): after["logged_model"]
        for target_id, after in events.iterator(chunk_size=1000)
        if isinstance(after, dict) and after.get("logged_model")
    }
    batch = []
    for version in ModelVersion.objects.filter(pk__in=logged_models).only("pk").iterator(1000):
        version.source_model = logged_models[version.pk]
        batch.append(version)
    ModelVersion.objects.bulk_update(batch, ["source_model"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("models_app", "0027_model_metric_key"),
        ("audit", "0003_audit_page_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelversion",
            name="source_model",
            field=models.CharField(
                blank=True, editable=False, max_length=64, verbose_name="logged model"
            ),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
    ]
