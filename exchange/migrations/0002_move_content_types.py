"""The content types (and so the permissions) of the two models moved from models_app follow
them: ``models_app.registryimport`` becomes ``exchange.registryimport``, and likewise for
importedauditevent. Otherwise post_migrate would create new rows for exchange and leave the old
ones, with any permission granted on them, stale.

On a new database there is nothing to rename (content types are created after migrating). A
row already present under the new label is left alone (remove_stale_contenttypes cleans up)."""

from django.db import migrations

MODELS = ["registryimport", "importedauditevent"]


def relabel(apps, schema_editor, old: str, new: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    content_types = ContentType.objects.using(schema_editor.connection.alias)
    for model in MODELS:
        if not content_types.filter(app_label=new, model=model).exists():
            content_types.filter(app_label=old, model=model).update(app_label=new)


def forward(apps, schema_editor) -> None:
    relabel(apps, schema_editor, "models_app", "exchange")


def backward(apps, schema_editor) -> None:
    relabel(apps, schema_editor, "exchange", "models_app")


class Migration(migrations.Migration):
    dependencies = [
        ("exchange", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(forward, backward, elidable=True),
    ]
