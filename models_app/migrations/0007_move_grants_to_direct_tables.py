"""Move the roles granted on registered models from guardian's generic tables (content type +
the model's id as text) into the direct tables of 0005, and back when unapplied.

Only rows that name an existing model by its id move. A generic row whose id is not a model's
(a model deleted without its grants, or an id written another way than Django writes it)
grants nothing today and could not be held by a foreign key: it stays where it is, so nothing
is lost either way. Every grant moves in one transaction (the migration's)."""

from django.db import migrations

BATCH = 1000
KINDS = (  # (generic model, direct model, the principal's column)
    ("UserObjectPermission", "RegisteredModelUserObjectPermission", "user_id"),
    ("GroupObjectPermission", "RegisteredModelGroupObjectPermission", "group_id"),
)


def _registered_model_type(apps):
    ContentType = apps.get_model("contenttypes", "ContentType")
    return ContentType.objects.filter(app_label="models_app", model="registeredmodel").first()


def to_direct_tables(apps, schema_editor):
    content_type = _registered_model_type(apps)
    if content_type is None:  # a new database: no permission could name a model yet
        return
    RegisteredModel = apps.get_model("models_app", "RegisteredModel")
    # The id as Django writes it into object_pk: a row naming a model any other way stays.
    model_ids = {str(pk): pk for pk in RegisteredModel.objects.values_list("pk", flat=True)}
    for generic_name, direct_name, principal in KINDS:
        generic = apps.get_model("guardian", generic_name)
        direct = apps.get_model("models_app", direct_name)
        rows = generic.objects.filter(content_type=content_type).values_list(
            "pk", principal, "permission_id", "object_pk"
        )
        moved, new = [], []
        for pk, principal_id, permission_id, object_pk in rows.iterator(chunk_size=BATCH):
            model_id = model_ids.get(object_pk)
            if model_id is None:
                continue
            moved.append(pk)
            new.append(
                direct(
                    **{principal: principal_id},
                    permission_id=permission_id,
                    content_object_id=model_id,
                )
            )
        direct.objects.bulk_create(new, batch_size=BATCH)
        for start in range(0, len(moved), BATCH):
            generic.objects.filter(pk__in=moved[start : start + BATCH]).delete()


def to_generic_tables(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for generic_name, direct_name, principal in KINDS:
        generic = apps.get_model("guardian", generic_name)
        direct = apps.get_model("models_app", direct_name)
        rows = list(direct.objects.values_list(principal, "permission_id", "content_object_id"))
        if not rows:
            continue
        content_type, _ = ContentType.objects.get_or_create(
            app_label="models_app", model="registeredmodel"
        )
        generic.objects.bulk_create(
            [
                generic(
                    **{principal: principal_id},
                    permission_id=permission_id,
                    content_type=content_type,
                    object_pk=str(model_id),
                )
                for principal_id, permission_id, model_id in rows
            ],
            batch_size=BATCH,
        )
        direct.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("guardian", "0001_initial"),
        ("models_app", "0006_registeredmodel_object_permissions"),
    ]

    operations = [migrations.RunPython(to_direct_tables, to_generic_tables)]
