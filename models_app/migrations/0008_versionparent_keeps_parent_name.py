"""Lineage links keep their parent's model name and number (issue 15, finding 3): added
nullable here, filled by 0009, tightened by 0010 (which also lets the parent go)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("models_app", "0007_move_grants_to_direct_tables"),
    ]

    operations = [
        migrations.AddField(
            model_name="versionparent",
            name="parent_model_name",
            field=models.CharField(editable=False, max_length=100, null=True),
        ),
        migrations.AddField(
            model_name="versionparent",
            name="parent_number",
            field=models.PositiveIntegerField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="versionparent",
            name="parent_in_child_model",
            field=models.BooleanField(default=False, editable=False),
        ),
    ]
