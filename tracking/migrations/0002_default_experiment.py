"""Experiment 0, "Default": where MLflow clients put runs when no experiment is set. It belongs
to no one; every signed-in user may use it (their runs there stay visible to them alone)."""

import time

from django.db import migrations


def create_default(apps, schema_editor):
    Experiment = apps.get_model("tracking", "Experiment")
    stamp = int(time.time() * 1000)
    Experiment.objects.get_or_create(
        pk=0, defaults={"name": "Default", "creation_time": stamp, "last_update_time": stamp}
    )


class Migration(migrations.Migration):
    dependencies = [("tracking", "0001_initial")]

    operations = [migrations.RunPython(create_default, migrations.RunPython.noop)]
