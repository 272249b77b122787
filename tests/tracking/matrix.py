"""Rows of the permission matrix for the tracking API (tests/test_permission_matrix.py), under
both prefixes it is served at.

The matrix world gets an experiment created by the manager persona and shared with view to the
viewer, reviewer and promoter and with edit to the editor, who starts a run in it (with a
metric, a tag and a file) and logs a model from that run. What each persona may then do does
not depend on the model's visibility:
- outsider and staff see nothing: 404, as for what does not exist;
- experiment roles as granted (the manager created it: every role);
- runs and logged models are visible to the experiment's viewers, written by their creator
  (the editor) and superusers only: the others who see them get 403.
"""

from types import SimpleNamespace

from django.urls import Resolver404, resolve

from models_app.access import Role
from models_app.storage import incoming_from_bytes
from tests.matrix_rules import LOGIN, R
from tracking import services

EXPERIMENT_VIEW, EXPERIMENT_EDIT, EXPERIMENT_MANAGE = (
    "experiment:view",
    "experiment:edit",
    "experiment:manage",
)
RUN_VIEW, RUN_WRITE = "run:view", "run:write"
# The run page (core.rules.RUN_PAGE): a run's viewers, and whoever may view a version registered
# from it. The matrix asks for the world's run (no version names it: RUN_VIEW's answers) and
# for a second run that the model's second version names (model viewers get in as well).
RUN_PAGE, RUN_PAGE_REGISTERED = "run:page", "run:page:registered"
RULES = {
    EXPERIMENT_VIEW, EXPERIMENT_EDIT, EXPERIMENT_MANAGE, RUN_VIEW, RUN_WRITE, RUN_PAGE,
    RUN_PAGE_REGISTERED,
}  # fmt: skip
EXPERIMENT_ROLES = {
    "viewer": {Role.VIEW},
    "reviewer": {Role.VIEW},
    "promoter": {Role.VIEW},
    "editor": {Role.VIEW, Role.EDIT},
    "manager": {Role.VIEW, Role.EDIT, Role.MANAGE},
    "superuser": {Role.VIEW, Role.EDIT, Role.MANAGE},
}
WRITERS = {"editor", "superuser"}  # the run's and logged model's creator, and superusers


def build(world) -> None:
    users = world.users
    experiment = services.experiment_create(
        actor=users["manager"], name="matrix-experiment", tags=[("stage", "dev")]
    )
    for persona, role in (
        ("viewer", Role.VIEW), ("reviewer", Role.VIEW), ("promoter", Role.VIEW),
        ("editor", Role.EDIT),
    ):  # fmt: skip
        services.experiment_sharing_set(
            actor=users["manager"], experiment=experiment, principal=users[persona], roles={role}
        )
    run = services.run_create(
        actor=users["editor"], experiment=experiment, tags=[("team", "fraud")]
    )
    services.run_log_batch(
        actor=users["editor"],
        run=run,
        metrics=[services.MetricIn(key="auc", value=0.9, timestamp=1, step=0)],
    )
    services.tracked_file_put(
        actor=users["editor"],
        owner=run,
        path="notes.txt",
        incoming=incoming_from_bytes("notes.txt", b"notes"),
    )
    logged = services.logged_model_create(
        actor=users["editor"],
        experiment=experiment,
        name="model",
        source_run=run,
        tags=[("k", "v")],
    )
    registered = services.run_create(actor=users["editor"], experiment=experiment)
    # The model's second version was trained by that run (as registering from it records).
    world.model.versions.exclude(pk=world.version.pk).update(source_run=registered.pk)
    world.tracking = SimpleNamespace(
        experiment=experiment, run=run, logged=logged, registered=registered
    )


def expected(need: str, persona: str, model_roles: set[Role] = frozenset()) -> str:
    """The answer for a persona holding these experiment roles (EXPERIMENT_ROLES) and, on the
    world's model, ``model_roles``."""
    if need == RUN_PAGE_REGISTERED and Role.VIEW in model_roles:
        return "allowed"
    roles = EXPERIMENT_ROLES.get(persona, set())
    if Role.VIEW not in roles:
        return "404"
    if need in (EXPERIMENT_VIEW, RUN_VIEW, RUN_PAGE, RUN_PAGE_REGISTERED):
        return "allowed"
    if need == RUN_WRITE:
        return "allowed" if persona in WRITERS else "403"
    wanted = Role.EDIT if need == EXPERIMENT_EDIT else Role.MANAGE
    return "allowed" if wanted in roles else "403"


def _exp(w) -> str:
    return str(w.tracking.experiment.pk)


def _run(w) -> str:
    return w.tracking.run.pk


def _model(w) -> str:
    return w.tracking.logged.pk


def _rows(api: str) -> dict:
    base = f"/api/{api}/mlflow/"

    def at(suffix):
        return lambda w, u: base + suffix(w)

    return {
        "experiment_create": R(LOGIN, "post", json=True, data={"name": "matrix-new"}),
        "experiment_get": R(
            EXPERIMENT_VIEW, path=at(lambda w: f"experiments/get?experiment_id={_exp(w)}")
        ),
        "experiment_get_by_name": R(
            EXPERIMENT_VIEW,
            path=at(lambda w: "experiments/get-by-name?experiment_name=matrix-experiment"),
        ),
        "experiment_search": R(LOGIN),
        "experiment_update": R(
            EXPERIMENT_MANAGE, "post", json=True,
            data=lambda w: {"experiment_id": _exp(w), "new_name": "matrix-renamed"},
        ),
        "experiment_delete": R(
            EXPERIMENT_MANAGE, "post", json=True, data=lambda w: {"experiment_id": _exp(w)}
        ),
        "experiment_restore": R(
            EXPERIMENT_MANAGE, "post", json=True, data=lambda w: {"experiment_id": _exp(w)}
        ),
        "experiment_set_tag": R(
            EXPERIMENT_EDIT, "post", json=True,
            data=lambda w: {"experiment_id": _exp(w), "key": "team", "value": "fraud"},
        ),
        "experiment_delete_tag": R(
            EXPERIMENT_EDIT, "post", json=True,
            data=lambda w: {"experiment_id": _exp(w), "key": "stage"},
        ),
        "run_create": R(
            EXPERIMENT_EDIT, "post", json=True, data=lambda w: {"experiment_id": _exp(w)}
        ),
        "run_get": R(RUN_VIEW, path=at(lambda w: f"runs/get?run_id={_run(w)}")),
        "run_update": R(
            RUN_WRITE, "post", json=True, data=lambda w: {"run_id": _run(w), "status": "FINISHED"}
        ),
        "run_delete": R(RUN_WRITE, "post", json=True, data=lambda w: {"run_id": _run(w)}),
        "run_restore": R(RUN_WRITE, "post", json=True, data=lambda w: {"run_id": _run(w)}),
        "run_search": R(LOGIN, "post", json=True, data={"experiment_ids": ["0"]}),
        "run_log_batch": R(
            RUN_WRITE, "post", json=True,
            data=lambda w: {"run_id": _run(w), "params": [{"key": "a", "value": "1"}]},
        ),
        "run_log_metric": R(
            RUN_WRITE, "post", json=True,
            data=lambda w: {"run_id": _run(w), "key": "auc", "value": 0.5, "timestamp": 2},
        ),
        "run_log_parameter": R(
            RUN_WRITE, "post", json=True,
            data=lambda w: {"run_id": _run(w), "key": "b", "value": "2"},
        ),
        "run_set_tag": R(
            RUN_WRITE, "post", json=True,
            data=lambda w: {"run_id": _run(w), "key": "t", "value": "v"},
        ),
        "run_delete_tag": R(
            RUN_WRITE, "post", json=True, data=lambda w: {"run_id": _run(w), "key": "team"}
        ),
        "run_log_inputs": R(RUN_WRITE, "post", json=True, data=lambda w: {"run_id": _run(w)}),
        "run_log_outputs": R(
            RUN_WRITE, "post", json=True,
            data=lambda w: {"run_id": _run(w), "models": [{"model_id": _model(w), "step": 0}]},
        ),
        "metric_history": R(
            RUN_VIEW, path=at(lambda w: f"metrics/get-history?run_id={_run(w)}&metric_key=auc")
        ),
        "logged_model_create": R(
            EXPERIMENT_EDIT, "post", json=True,
            data=lambda w: {"experiment_id": _exp(w), "name": "another"},
        ),
        "logged_model_search": R(LOGIN, "post", json=True, data={"experiment_ids": ["0"]}),
        "logged_model": [
            R(RUN_VIEW, path=at(lambda w: f"logged-models/{_model(w)}")),
            R(
                RUN_WRITE, "patch", json=True, data={"status": "LOGGED_MODEL_READY"},
                path=at(lambda w: f"logged-models/{_model(w)}"),
            ),
        ],
        "logged_model_set_tags": R(
            RUN_WRITE, "patch", json=True, data={"tags": [{"key": "a", "value": "b"}]},
            path=at(lambda w: f"logged-models/{_model(w)}/tags"),
        ),
        "logged_model_delete_tag": R(
            RUN_WRITE, "delete", json=True, path=at(lambda w: f"logged-models/{_model(w)}/tags/k")
        ),
        "logged_model_params": R(
            RUN_WRITE, "post", json=True, data={"params": [{"key": "p", "value": "1"}]},
            path=at(lambda w: f"logged-models/{_model(w)}/params"),
        ),
    }  # fmt: skip


def _routed(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


ROUTES: dict = {f"mlflow:{name}": rule for name, rule in _rows("2.0").items()}
if _routed("/api/3.0/mlflow/runs/get"):
    ROUTES.update({f"mlflow3:{name}": rule for name, rule in _rows("3.0").items()})

ROUTES.update(
    {
        "tracking:experiment_list": R(LOGIN),
        "tracking:experiment_detail": R(EXPERIMENT_VIEW, args=lambda w, u: [_exp(w)]),
        "tracking:experiment_sharing": [
            R(EXPERIMENT_MANAGE, args=lambda w, u: [_exp(w)]),
            R(
                EXPERIMENT_MANAGE, "post", args=lambda w, u: [_exp(w)],
                data={"kind": "user", "name": "outsider", "roles": ["view"]},
            ),
        ],
        "tracking:experiment_sharing_remove": R(
            EXPERIMENT_MANAGE, "post", args=lambda w, u: [_exp(w)],
            data={"kind": "user", "name": "viewer"},
        ),
        "tracking:run_detail": [
            R(RUN_PAGE, args=lambda w, u: [_run(w)]),
            R(RUN_PAGE_REGISTERED, args=lambda w, u: [w.tracking.registered.pk]),
        ],
    }
)  # fmt: skip

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts/"
# The artifact proxy's run and logged-model folders (the registry's rows are in
# tests/mlflow_compat/matrix.py): read by who sees the run, written by its creator.
ARTIFACT_ROWS = [
    R(RUN_VIEW, path=lambda w, u: f"{ARTIFACTS}{_exp(w)}/{_run(w)}/artifacts/notes.txt"),
    R(RUN_WRITE, "put", path=lambda w, u: f"{ARTIFACTS}{_exp(w)}/{_run(w)}/artifacts/more.txt"),
    R(
        RUN_WRITE,
        "put",
        path=lambda w, u: f"{ARTIFACTS}{_exp(w)}/models/{_model(w)}/artifacts/MLmodel",
    ),
]
ARTIFACT_LIST_ROWS = [
    R(RUN_VIEW, path=lambda w, u: f"{ARTIFACTS[:-1]}?path={_exp(w)}/{_run(w)}/artifacts"),
]
