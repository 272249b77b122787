"""Artifacts remember who uploaded them, for storage quotas: add ``uploaded_by`` and fill it in
with the creator of each file's version (who registered it, before this was recorded)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def fill_uploaders(apps, schema_editor):
    Artifact = apps.get_model("models_app", "Artifact")
    ModelVersion = apps.get_model("models_app", "ModelVersion")
    creator = ModelVersion.objects.filter(pk=OuterRef("version_id")).values("created_by_id")[:1]
    Artifact.objects.filter(uploaded_by__isnull=True).update(uploaded_by=Subquery(creator))


class Migration(migrations.Migration):
    dependencies = [
        ("models_app", "0013_reservedname"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="artifact",
            name="uploaded_by",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="uploaded_artifacts",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(fill_uploaders, migrations.RunPython.noop),
    ]
