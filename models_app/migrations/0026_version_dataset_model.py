import django.db.models.deletion
from django.db import migrations, models


def fill_models(apps, schema_editor):
    """Each link's model from its version, in one UPDATE (1.1 million links: 1-2 minutes)."""
    VersionDataset = apps.get_model("models_app", "VersionDataset")
    ModelVersion = apps.get_model("models_app", "ModelVersion")
    quote = schema_editor.quote_name
    links, versions = VersionDataset._meta.db_table, ModelVersion._meta.db_table
    schema_editor.execute(
        f"UPDATE {quote(links)} SET model_id = v.model_id "  # noqa: S608 (names from metadata)
        f"FROM {quote(versions)} v WHERE v.id = {quote(links)}.version_id"
    )
    if schema_editor.connection.vendor == "postgresql":
        # The new key's checks are deferred to the commit; the NOT NULL below may not run
        # while they are pending.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):
    dependencies = [
        ("models_app", "0025_metric_step"),
    ]

    operations = [
        migrations.AddField(
            model_name="versiondataset",
            name="model",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="models_app.registeredmodel",
            ),
        ),
        migrations.RunPython(fill_models, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="versiondataset",
            name="model",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="models_app.registeredmodel",
            ),
        ),
        migrations.AddIndex(
            model_name="versiondataset",
            index=models.Index(
                fields=["model", "dataset", "-version", "role"], name="version_dataset_model_idx"
            ),
        ),
    ]
