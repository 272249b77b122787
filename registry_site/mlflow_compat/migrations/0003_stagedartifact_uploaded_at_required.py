"""``uploaded_at`` is required (0002 filled it), and the expiry's index moves to it."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("mlflow_compat", "0002_stagedartifact_uploaded_at"),
    ]

    operations = [
        migrations.AlterField(
            model_name="stagedartifact",
            name="uploaded_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.RemoveIndex(
            model_name="stagedartifact",
            name="staged_artifact_created_idx",
        ),
        migrations.AddIndex(
            model_name="stagedartifact",
            index=models.Index(fields=["uploaded_at"], name="staged_artifact_uploaded_idx"),
        ),
    ]
