"""Rows of the permission matrix for this area's routes (see tests/test_permission_matrix.py).

The MLflow API names models in the query string or the JSON body, so rows carry ``query`` or
``data``; anonymous callers get 401 (the matrix reads it as "login").
"""

from django.urls import Resolver404, resolve

from models_app.access import Role
from tests.matrix_rules import LOGIN, R

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts/registry"


def named(**fields):
    """A JSON body naming the world's model, plus ``fields``."""
    return lambda w: {"name": w.model.name, **fields}


ROUTES: dict = {
    "mlflow:model_create": R(LOGIN, "post", json=True, data={"name": "made-through-mlflow"}),
    "mlflow:model_get": R(Role.VIEW, query="name={name}"),
    "mlflow:model_update": R(Role.MANAGE, "patch", json=True, data=named(description="new")),
    "mlflow:model_rename": R(Role.MANAGE, "post", json=True, data=named(new_name="renamed")),
    "mlflow:model_delete": R(Role.MANAGE, "delete", json=True, data=named()),
    "mlflow:model_search": R(LOGIN, query="max_results=10"),
    "mlflow:model_latest_versions": [
        R(Role.VIEW, "post", json=True, data=named(stages=["None"])),
        R(Role.VIEW, query="name={name}"),
    ],
    "mlflow:model_set_tag": R(Role.MANAGE, "post", json=True, data=named(key="team", value="x")),
    "mlflow:model_delete_tag": R(Role.MANAGE, "delete", json=True, data=named(key="team")),
    "mlflow:model_alias": [
        R(Role.VIEW, query="name={name}&alias=latest"),
        R(Role.EDIT, "post", json=True, data=named(alias="champion", version="1")),
        R(Role.EDIT, "delete", json=True, data=named(alias="champion")),
        # production: the promote role (then the version must be approved: a 400 is allowed)
        R(Role.PROMOTE, "post", json=True, data=named(alias="production", version="1")),
    ],
    "mlflow:version_create": R(Role.EDIT, "post", json=True, data=named(source="s3://b/m")),
    "mlflow:version_get": R(Role.VIEW, query="name={name}&version=1"),
    "mlflow:version_update": R(
        Role.EDIT, "patch", json=True, data=named(version="1", description="new")
    ),
    "mlflow:version_delete": R(Role.EDIT, "delete", json=True, data=named(version="2")),
    "mlflow:version_stage": R(
        Role.PROMOTE,
        "post",
        json=True,
        data=named(version="1", stage="Production", archive_existing_versions=False),
    ),
    "mlflow:version_search": R(LOGIN, query="max_results=10"),
    "mlflow:version_download_uri": R(Role.VIEW, query="name={name}&version=1"),
    "mlflow:version_set_tag": R(
        Role.EDIT, "post", json=True, data=named(version="1", key="k", value="v")
    ),
    "mlflow:version_delete_tag": R(
        Role.EDIT, "delete", json=True, data=named(version="1", key="k")
    ),
    "mlflow:artifact_list": R(Role.VIEW, query="path=registry/{slug}/1"),
    "mlflow:artifact": [
        R(Role.VIEW, path=lambda w, u: f"{ARTIFACTS}/{w.model.slug}/1/model.bin"),
        R(Role.EDIT, "put", path=lambda w, u: f"{ARTIFACTS}/{w.model.slug}/up-1/model.bin"),
        R(Role.EDIT, "delete", path=lambda w, u: f"{ARTIFACTS}/{w.model.slug}/up-1"),
    ],
}


def _routed(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


# The 3.0 probe lives outside this app's /api/2.0/ include; its row exists once it is routed.
if _routed("/api/3.0/mlflow/server-info"):
    ROUTES["mlflow3:server_info"] = R(LOGIN)
