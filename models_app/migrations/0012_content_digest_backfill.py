"""Versions submitted before content digests: record the digest of their content as it is now
(their files and metadata have been frozen since submission), and their authors and card
editors (other than the author, who always counts) as contributors."""

from django.db import migrations
from django.db.models import F

from models_app import digest


def forwards(apps, schema_editor):
    ModelVersion = apps.get_model("models_app", "ModelVersion")
    ModelCard = apps.get_model("models_app", "ModelCard")
    VersionContributor = apps.get_model("models_app", "VersionContributor")
    for version in (
        ModelVersion.objects.exclude(status="draft").filter(content_digest="").iterator()
    ):
        version.content_digest = digest.content_digest(version)
        version.save(update_fields=["content_digest"])
    rows = [
        VersionContributor(version_id=pk, user_id=user)
        for pk, user in ModelCard.objects.exclude(updated_by=None)
        .exclude(updated_by=F("version__created_by"))
        .values_list("version_id", "updated_by_id")
        .iterator()
    ]
    VersionContributor.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [("models_app", "0011_content_digest")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
