"""Who changed a draft's content. Its author always counts; everyone else who changes its
files, metadata or card afterwards is recorded here, inside the transaction of the change.
Contributors may not review the version (approvals.services.reviews)."""

from models_app.models import ModelVersion, VersionContributor


def contributed(version: ModelVersion, user) -> None:
    if user.pk == version.created_by_id:
        return
    VersionContributor.objects.bulk_create(
        [VersionContributor(version=version, user=user)], ignore_conflicts=True
    )


def contributor_ids(version: ModelVersion) -> set[int]:
    """The author and everyone recorded as changing the version's content."""
    return {version.created_by_id, *version.contributors.values_list("user_id", flat=True)}
