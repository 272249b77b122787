"""Datasets that versions are trained and evaluated on."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from audit import chain
from models_app.models import (
    Dataset,
)


def dataset_create(
    *,
    actor,
    name: str,
    uri: str = "",
    digest: str = "",
    row_count: int | None = None,
    description: str = "",
) -> Dataset:
    dataset = Dataset(
        name=name.strip(),
        uri=uri,
        digest=digest,
        row_count=row_count,
        description=description,
        created_by=actor,
    )
    dataset.full_clean()
    try:
        with transaction.atomic():
            dataset.save()
            chain.record(
                actor=actor,
                action="dataset.created",
                target=dataset,
                after={"name": dataset.name, "uri": uri, "digest": digest},
            )
    except IntegrityError:
        raise ValidationError({"name": ["A dataset with this name exists."]}) from None
    return dataset
