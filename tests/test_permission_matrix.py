"""The permission matrix: every route of the product × every persona × private/internal model.

Each route declares the role it needs (ROUTES below). For every persona the expected answer
follows from the roles they hold on the model:
- anonymous: the login page (302), except PUBLIC routes;
- cannot view the model: 404, exactly as for a model that does not exist;
- can view but lacks the role: 403;
- holds the role: "allowed" — anything but 302-to-login, 403, 404 or 405 (a 400 or 409 from
  the action itself is allowed: the caller got past the access check).
A route missing from ROUTES fails test_every_route_is_in_the_matrix, so a new URL cannot ship
without its row. Requests run inside a rolled-back transaction per persona, so one persona's
successful delete does not change what the next one sees.
"""

import json

import pytest
from django.db import transaction
from django.test import Client
from django.urls import get_resolver, reverse

from core.rules import SUPERUSER
from models_app.access import Role
from models_app.models import RegisteredModel, ReservedName
from tests import factories
from tests.api import matrix as api_matrix
from tests.approvals import webhook_matrix
from tests.matrix_rules import (
    DATASET_OWNER,
    DATASET_OWNERS,
    LOGIN,
    PUBLIC,
    STAFF,
    F,
    M,
    R,
    V,
    World,
    own_token,
    v,
)
from tests.mlflow_compat import matrix as mlflow_matrix
from tests.models_app import card_matrix
from tests.routes import all_routes
from tests.tracking import matrix as tracking_matrix

pytestmark = pytest.mark.django_db


PERSONAS = [
    "anonymous", "outsider", "viewer", "editor", "reviewer", "promoter", "manager", "staff",
    "superuser",
]  # fmt: skip
ROLES = {
    "viewer": {Role.VIEW},
    "editor": {Role.VIEW, Role.EDIT},
    "reviewer": {Role.VIEW, Role.REVIEW},
    "promoter": {Role.VIEW, Role.PROMOTE},
    "manager": set(Role),
    "superuser": set(Role),
}


def rules_of_entry(entry) -> list[R]:
    return entry if isinstance(entry, list) else [entry]


ROUTES = {
    # site
    "home": R(LOGIN),
    "healthz": R(PUBLIC),
    "login": R(PUBLIC),
    "logout": R(PUBLIC, "post", ends_at_login=True),
    "password_change": R(LOGIN),
    "password_change_done": R(LOGIN),
    "profile": R(LOGIN),
    "token_revoke": R(LOGIN, "post", args=lambda w, u: [own_token(u)]),
    "teams": R(LOGIN),
    # catalogue
    "models_app:model_list": R(LOGIN),
    "models_app:model_create": R(LOGIN),
    "models_app:model_detail": R(Role.VIEW, args=M),
    "models_app:model_edit": R(Role.MANAGE, args=M),
    "models_app:model_delete": R(
        Role.MANAGE, "post", args=M, data=lambda w: {"confirm": w.model.name}
    ),
    "models_app:model_sharing": R(Role.MANAGE, args=M),
    "models_app:model_sharing_remove": R(
        Role.MANAGE, "post", args=M, data={"kind": "user", "name": "viewer"}
    ),
    "models_app:versions_csv": R(Role.VIEW, args=M),
    "models_app:version_create": R(Role.EDIT, args=M),
    "models_app:version_detail": R(Role.VIEW, args=V),
    "models_app:version_edit": R(Role.EDIT, args=V),
    "models_app:version_delete": R(Role.EDIT, "post", args=V),
    "models_app:version_lineage": R(Role.VIEW, args=V),
    "models_app:artifact_add": R(Role.EDIT, args=V),
    "models_app:artifact_delete": R(Role.EDIT, "post", args=F),
    "models_app:artifact_download": R(Role.VIEW, args=F),
    "models_app:version_zip": R(Role.VIEW, args=V),
    # compare is a signed-in page, but a version one may not view is a 404 like a missing one
    "models_app:compare": R(Role.VIEW, query="v={v1}&v={v2}"),
    "models_app:dataset_list": R(LOGIN),
    "models_app:dataset_create": R(LOGIN),
    "models_app:dataset_detail": R(
        LOGIN, args=lambda w, u: [w.version.dataset_links.first().dataset_id]
    ),
    "models_app:dataset_edit": [
        R(DATASET_OWNER, args=lambda w, u: [w.version.dataset_links.first().dataset_id]),
        R(
            DATASET_OWNER,
            "post",
            args=lambda w, u: [w.version.dataset_links.first().dataset_id],
            data={"uri": "s3://data/claims", "description": "Claims."},
        ),
    ],
    # review workflow
    "approvals:inbox": R(LOGIN),
    "approvals:audit": R(LOGIN),
    "approvals:audit_csv": R(LOGIN),
    "approvals:review": R(Role.VIEW, args=V),
    "approvals:submit": R(Role.EDIT, "post", args=V),
    "approvals:withdraw": R(Role.EDIT, "post", args=V),  # the service then asks for the author
    "approvals:approve": R(Role.REVIEW, "post", args=V),
    "approvals:reject": R(Role.REVIEW, "post", args=V, data={"reason": "no"}),
    "approvals:comment": R(Role.VIEW, "post", args=V, data={"body": "hello"}),
    "approvals:archive": R(Role.MANAGE, "post", args=V),
    "approvals:signatures": R(Role.VIEW, args=V),
    "approvals:aliases": R(Role.VIEW, args=M),
    "approvals:alias_set": R(Role.EDIT, "post", args=M, data={"alias": "champion", "version": "1"}),
    "approvals:rollback": R(Role.PROMOTE, "post", args=M, data={"reason": "why"}),
    "approvals:alias_delete": R(Role.EDIT, "post", args=lambda w, u: [w.model.slug, "champion"]),
    "approvals:policy": R(Role.MANAGE, args=M),
}
# Areas that add routes contribute their rows from tests/<area>/matrix.py.
ROUTES.update(api_matrix.ROUTES)
ROUTES.update(mlflow_matrix.ROUTES)
ROUTES.update(webhook_matrix.ROUTES)
ROUTES.update(card_matrix.ROUTES)
ROUTES.update(tracking_matrix.ROUTES)
ROUTES["mlflow:artifact"] = [
    *rules_of_entry(ROUTES["mlflow:artifact"]),
    *tracking_matrix.ARTIFACT_ROWS,
]
ROUTES["mlflow:artifact_list"] = [
    *rules_of_entry(ROUTES["mlflow:artifact_list"]),
    *tracking_matrix.ARTIFACT_LIST_ROWS,
]

ADMIN_URLS = ["/admin/", "/admin/models_app/registeredmodel/", "/admin/auth/user/"]


def route_names() -> set[str]:
    names = set()
    for route, rule in all_routes(get_resolver().url_patterns):
        if rule in (STAFF, SUPERUSER):  # the admin, global webhooks: tests of their own
            continue
        match = get_resolver().resolve("/" + _example(route))
        names.add(f"{match.namespace}:{match.url_name}" if match.namespace else match.url_name)
    return names


def _example(route: str) -> str:
    """A concrete path for a route pattern, to resolve its name."""
    import re

    path = re.sub(r"<int:\w+>", "1", route)
    path = re.sub(r"<path:\w+>", "a/b", path)
    return re.sub(r"<(?:str:)?\w+>", "x", path)


def test_every_route_is_in_the_matrix():
    assert route_names() == set(ROUTES), (
        f"missing from the matrix: {sorted(route_names() - set(ROUTES))}; "
        f"stale in the matrix: {sorted(set(ROUTES) - route_names())}"
    )


def build_world(visibility: str) -> World:
    users = {name: factories.user(name) for name in PERSONAS if name not in ("anonymous",)}
    users["staff"].is_staff = True
    users["staff"].save()
    users["superuser"].is_superuser = users["superuser"].is_staff = True
    users["superuser"].save()
    model = factories.registered_model(users["manager"], "matrix-model", visibility=visibility)
    for persona, role in (
        ("viewer", "view"), ("editor", "edit"), ("reviewer", "review"), ("promoter", "promote")
    ):  # fmt: skip
        factories.grant(users[persona], model, role)
    version = factories.version(
        model, users["editor"], description="d", files={"model.bin": b"weights"},
        metrics={"auc": 0.9}, datasets=[{"name": "claims", "role": "train"}],
    )  # fmt: skip
    factories.version(model, users["editor"])
    world = World(model, version, users)
    tracking_matrix.build(world)
    return world


def holds(world: World, persona: str, visibility: str) -> set[Role]:
    if persona == "anonymous":
        return set()
    held = set(ROLES.get(persona, set()))
    if visibility == RegisteredModel.Visibility.INTERNAL:
        held.add(Role.VIEW)
    return held


def expected(rule: R, persona: str, held: set[Role]) -> str:
    if persona == "anonymous":
        return "allowed" if rule.need == PUBLIC else "login"
    if rule.need in (PUBLIC, LOGIN):
        return "allowed"
    if rule.need in tracking_matrix.RULES:  # the experiment's grants, whatever the model's
        return tracking_matrix.expected(rule.need, persona, held)
    if rule.need == DATASET_OWNER:
        return "allowed" if persona in DATASET_OWNERS else "403"
    if Role.VIEW not in held:
        return "404"
    return "allowed" if rule.need in held else "403"


def observed(response) -> str:
    if response.status_code == 302 and "/accounts/login/" in response.get("Location", ""):
        return "login"
    if response.status_code == 401:  # API routes answer anonymous callers with 401
        return "login"
    if response.status_code in (403, 404, 405):
        return str(response.status_code)
    return "allowed"


def request(world: World, name: str, rule: R, persona: str):
    user = world.users.get(persona)
    client = Client()
    if user is not None:
        client.force_login(user)
    if rule.path:
        target = rule.path(world, user)
    else:
        target = reverse(name, args=rule.args(world, user) if rule.args else [])
    if rule.query:
        second = world.model.versions.exclude(pk=world.version.pk).first()
        query = rule.query.format(
            v1=world.version.pk, v2=second.pk, slug=world.model.slug, name=world.model.name
        )
        target += ("&" if "?" in target else "?") + query
    data = rule.data(world) if callable(rule.data) else (rule.data or {})
    if rule.json:
        return client.generic(
            rule.method.upper(), target, json.dumps(data), content_type="application/json"
        )
    return getattr(client, rule.method)(target, data)


def rules_of(name: str) -> list[R]:
    entry = ROUTES[name]
    return entry if isinstance(entry, list) else [entry]


@pytest.mark.parametrize("visibility", ["private", "internal"])
@pytest.mark.parametrize("name", sorted(ROUTES))
def test_permission_matrix(name, visibility):
    world = build_world(visibility)
    table = []
    for rule in rules_of(name):
        for persona in PERSONAS:
            with transaction.atomic():
                response = request(world, name, rule, persona)
                transaction.set_rollback(True)
            want = expected(rule, persona, holds(world, persona, visibility))
            got = observed(response)
            if rule.ends_at_login and got == "login":
                got = "allowed"
            table.append((rule.method, persona, want, got, response.status_code))
    wrong = [row for row in table if row[2] != row[3]]
    assert not wrong, (
        f"{name} on a {visibility} model: (method, persona, expected, got, status) {wrong}"
    )


@pytest.mark.parametrize("url", ADMIN_URLS)
def test_admin_is_for_staff_only(url):
    world = build_world("private")
    for persona in PERSONAS:
        client = Client()
        if persona != "anonymous":
            client.force_login(world.users[persona])
        status = client.get(url).status_code
        if persona == "superuser" or (persona == "staff" and url == "/admin/"):
            assert status == 200, (persona, url, status)
        elif persona == "staff":
            assert status in (403, 200), (persona, url, status)
        else:
            assert status == 302, (persona, url, status)


def test_staff_non_superuser_sees_no_ungranted_model_in_admin():
    world = build_world("private")
    staff = world.users["staff"]
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(Permission.objects.get(codename="view_registeredmodel"))
    client = Client()
    client.force_login(staff)
    html = client.get("/admin/models_app/registeredmodel/").content.decode()
    assert "matrix-model" not in html
    factories.grant(staff, world.model, "view")
    assert "matrix-model" in client.get("/admin/models_app/registeredmodel/").content.decode()


def test_outsider_404_is_identical_to_a_missing_model():
    world = build_world("private")
    client = Client()
    client.force_login(world.users["outsider"])
    hidden = client.get(reverse("models_app:model_detail", args=[world.model.slug]))
    missing = client.get(reverse("models_app:model_detail", args=["no-such-model"]))
    assert hidden.status_code == missing.status_code == 404
    assert without_nonce(hidden.content) == without_nonce(missing.content)
    hidden_file = client.get(reverse("models_app:artifact_download", args=[*v(world), "model.bin"]))
    missing_file = client.get(
        reverse("models_app:artifact_download", args=["no-such-model", 1, "model.bin"])
    )
    assert hidden_file.status_code == missing_file.status_code == 404
    assert without_nonce(hidden_file.content) == without_nonce(missing_file.content)


def without_nonce(body: bytes) -> bytes:
    """Pages carry a fresh CSP nonce and a freshly masked CSRF token per response; everything
    else must be identical."""
    import re

    body = re.sub(rb'nonce="[^"]+"', b'nonce=""', body)
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"csrf", body)


def test_deleted_model_grants_do_not_carry_over_to_a_new_model_of_the_same_name():
    from models_app import services
    from models_app.access import roles_for

    world = build_world("private")
    services.model_delete(actor=world.users["manager"], model=world.model)
    # The name is reserved until an administrator releases it (issue 15, finding 19).
    root = factories.user("matrix-root", is_superuser=True)
    services.name_release(actor=root, reserved=ReservedName.objects.get(name="matrix-model"))
    again = factories.registered_model(world.users["outsider"], "matrix-model")
    for persona in ("viewer", "editor", "reviewer", "promoter", "manager"):
        assert roles_for(world.users[persona], again) == set(), persona
