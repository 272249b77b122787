"""Staged uploads expire a day after their latest upload: add ``uploaded_at`` (nullable),
filled from ``created_at`` for the rows already there; 0003 makes it required."""

from django.db import migrations, models
from django.db.models import F


def fill_uploaded_at(apps, schema_editor):
    StagedArtifact = apps.get_model("mlflow_compat", "StagedArtifact")
    StagedArtifact.objects.filter(uploaded_at__isnull=True).update(uploaded_at=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("mlflow_compat", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="stagedartifact",
            name="uploaded_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(fill_uploaded_at, migrations.RunPython.noop, elidable=True),
    ]
