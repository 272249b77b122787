"""Every change to the catalogue: one function each, one transaction each, one audit event each.

Files are written to storage before the transaction that records them, under fresh keys; if
anything fails afterwards they are deleted again, and a crash in between leaves only keys no
row points at, which ``manage.py sweep_orphans`` removes.

One module per concern; callers use the package: ``services.version_create(...)``."""

from models_app.services.cards import (
    CARD_NOTES_MAX,
    CARD_SECTION_MAX,
    card_template_update,
    card_update,
)
from models_app.services.datasets import (
    dataset_create,
    dataset_update,
    datasets_resolve,
    may_correct_dataset,
)
from models_app.services.files import FILLABLE
from models_app.services.models import (
    MODEL_FIELDS,
    metric_direction_set,
    model_create,
    model_delete,
    model_update,
    name_release,
)
from models_app.services.versions import (
    artifact_add,
    artifact_delete,
    version_create,
    version_delete,
    version_state,
    version_update,
)

__all__ = [
    "CARD_NOTES_MAX",
    "CARD_SECTION_MAX",
    "FILLABLE",
    "MODEL_FIELDS",
    "artifact_add",
    "artifact_delete",
    "card_template_update",
    "card_update",
    "dataset_create",
    "dataset_update",
    "datasets_resolve",
    "may_correct_dataset",
    "metric_direction_set",
    "model_create",
    "model_delete",
    "model_update",
    "name_release",
    "version_create",
    "version_delete",
    "version_state",
    "version_update",
]
