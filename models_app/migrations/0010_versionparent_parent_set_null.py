"""The kept name and number are required now; a parent may be deleted, leaving the link."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("models_app", "0009_fill_versionparent_names"),
    ]

    operations = [
        migrations.AlterField(
            model_name="versionparent",
            name="parent_model_name",
            field=models.CharField(editable=False, max_length=100),
        ),
        migrations.AlterField(
            model_name="versionparent",
            name="parent_number",
            field=models.PositiveIntegerField(editable=False),
        ),
        migrations.AlterField(
            model_name="versionparent",
            name="parent",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="child_links",
                to="models_app.modelversion",
            ),
        ),
    ]
