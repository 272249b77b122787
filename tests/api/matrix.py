"""Rows of the permission matrix for this area's routes (see tests/test_permission_matrix.py).

The JSON API answers anonymous callers with 401 (the matrix counts it as "login"). Several
HTTP methods share one URL name, so a name maps to a list of rows, one per method."""

from models_app.access import Role
from tests.matrix_rules import DATASET_OWNER, LOGIN, R, v


def _with_champion(w) -> str:
    """Point the ordinary alias 'champion' at the world's version (inside the persona's
    rolled-back transaction), so that reading it has something to find."""
    from approvals import services

    services.alias_set(actor=w.users["manager"], model=w.model, name="champion", version=w.version)
    return "champion"


M = lambda w, u: [w.model.slug]  # noqa: E731
V = lambda w, u: v(w)  # noqa: E731
FILE = lambda w, u: [*v(w), "model.bin"]  # noqa: E731
NEW_FILE = lambda w, u: [*v(w), "new.bin"]  # noqa: E731
CHAMPION = lambda w, u: [w.model.slug, _with_champion(w)]  # noqa: E731
ALIAS = lambda w, u: [w.model.slug, "champion"]  # noqa: E731
PRODUCTION = lambda w, u: [w.model.slug, "production"]  # noqa: E731
VIEWER_GRANT = lambda w, u: [w.model.slug, "users", "viewer"]  # noqa: E731

ROUTES: dict = {
    "api:api-root": R(LOGIN),
    "api:openapi-json": R(LOGIN),
    "api:docs": R(LOGIN),
    # models
    "api:models": [
        R(LOGIN),
        R(LOGIN, "post", json=True, data={"name": "from-the-api"}),
    ],
    "api:model": [
        R(Role.VIEW, args=M),
        R(Role.MANAGE, "patch", args=M, json=True, data={"description": "changed"}),
        R(Role.MANAGE, "delete", args=M),
    ],
    # versions, files, lineage
    "api:versions": [
        R(Role.VIEW, args=M),
        R(Role.EDIT, "post", args=M, json=True, data={"description": "from the API"}),
    ],
    "api:version": [
        R(Role.VIEW, args=V),
        R(Role.EDIT, "patch", args=V, json=True, data={"description": "changed"}),
        R(Role.EDIT, "delete", args=V),
    ],
    "api:files": R(Role.VIEW, args=V),
    "api:file": [
        R(Role.VIEW, args=FILE),
        R(Role.EDIT, "put", args=NEW_FILE, data=b"new bytes"),
        R(Role.EDIT, "delete", args=FILE),
    ],
    "api:lineage": R(Role.VIEW, args=V),
    "api:version_manifest": R(Role.VIEW, args=V),
    # workflow
    "api:submit": R(Role.EDIT, "post", args=V, json=True),
    "api:withdraw": R(Role.EDIT, "post", args=V, json=True),  # the service asks for the author
    "api:approve": R(Role.REVIEW, "post", args=V, json=True),
    "api:reject": R(Role.REVIEW, "post", args=V, json=True, data={"reason": "no"}),
    "api:archive": R(Role.MANAGE, "post", args=V, json=True),
    "api:comments": [
        R(Role.VIEW, args=V),
        R(Role.VIEW, "post", args=V, json=True, data={"body": "hello"}),
    ],
    # aliases
    "api:aliases": R(Role.VIEW, args=M),
    "api:alias": [
        R(Role.VIEW, args=CHAMPION),
        R(Role.EDIT, "put", args=ALIAS, json=True, data={"version": 1}),
        R(Role.EDIT, "delete", args=ALIAS),
    ],
    "api:alias_rollback": R(
        Role.PROMOTE, "post", args=PRODUCTION, json=True, data={"reason": "why"}
    ),
    "api:alias_history": R(Role.VIEW, args=ALIAS),
    "api:alias_resolve": R(Role.VIEW, args=CHAMPION),
    # sharing
    "api:sharing": R(Role.MANAGE, args=M),
    "api:grant": [
        R(Role.MANAGE, "put", args=VIEWER_GRANT, json=True, data={"roles": ["view"]}),
        R(Role.MANAGE, "delete", args=VIEWER_GRANT),
    ],
    # datasets and audit
    "api:datasets": [
        R(LOGIN),
        R(LOGIN, "post", json=True, data={"name": "from-the-api"}),
    ],
    "api:dataset": [
        R(LOGIN, args=lambda w, u: [w.version.dataset_links.first().dataset_id]),
        R(
            DATASET_OWNER,
            "patch",
            args=lambda w, u: [w.version.dataset_links.first().dataset_id],
            json=True,
            data={"description": "Claims."},
        ),
    ],
    "api:audit": R(LOGIN),
}
