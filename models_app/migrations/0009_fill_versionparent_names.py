"""Every existing link gets its parent's model name and number (all parents exist: until now
they could not be deleted)."""

from django.db import migrations


def fill(apps, schema_editor):
    VersionParent = apps.get_model("models_app", "VersionParent")
    links = VersionParent.objects.select_related("parent__model", "child").order_by("pk")
    batch = []
    for link in links.iterator(chunk_size=1000):
        link.parent_model_name = link.parent.model.name
        link.parent_number = link.parent.number
        link.parent_in_child_model = link.parent.model_id == link.child.model_id
        batch.append(link)
        if len(batch) == 1000:
            VersionParent.objects.bulk_update(
                batch, ["parent_model_name", "parent_number", "parent_in_child_model"]
            )
            batch = []
    VersionParent.objects.bulk_update(
        batch, ["parent_model_name", "parent_number", "parent_in_child_model"]
    )


class Migration(migrations.Migration):
    dependencies = [
        ("models_app", "0008_versionparent_keeps_parent_name"),
    ]

    operations = [
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
    ]
