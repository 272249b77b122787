"""Rows of the permission matrix for model cards, inspection and lineage pages."""

from models_app.access import Role
from tests.matrix_rules import LOGIN, R, V


def _dataset(w, u) -> list:
    return [w.version.dataset_links.first().dataset_id]


ROUTES: dict = {
    "models_app:version_card": R(Role.VIEW, args=V),
    "models_app:card_edit": [
        R(Role.EDIT, args=V),
        R(Role.EDIT, "post", args=V, data={"intended_use": "Scoring claims."}),
    ],
    "models_app:card_markdown": R(Role.VIEW, args=V),
    "models_app:card_print": R(Role.VIEW, args=V),
    "models_app:dataset_impact": R(LOGIN, args=_dataset),
}
