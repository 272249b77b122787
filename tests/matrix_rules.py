"""The vocabulary of the permission matrix (tests/test_permission_matrix.py), shared with the
route tables that other areas contribute (tests/<area>/matrix.py: a ROUTES dict each)."""

from dataclasses import dataclass, field

from models_app.models import RegisteredModel
from registry_site.tokens import token_create

PUBLIC, LOGIN, STAFF = "public", "login", "staff"
# The matrix's dataset ("claims") is registered by the editor with the first version: the
# editor owns it, superusers may change it too, every other signed-in persona gets 403.
DATASET_OWNER = "dataset:owner"
DATASET_OWNERS = {"editor", "superuser"}


@dataclass
class World:
    model: RegisteredModel
    version: object
    users: dict = field(default_factory=dict)


def v(w: World) -> list:
    return [w.model.slug, w.version.number]


@dataclass(frozen=True)
class R:
    need: object  # PUBLIC, LOGIN, STAFF, DATASET_OWNER or a Role
    method: str = "get"
    args: object = None  # callable(world, user) -> list of URL args
    data: object = None  # dict or callable(world) -> dict
    query: str = ""
    ends_at_login: bool = False  # the action itself redirects to the login page (sign-out)
    json: bool = False  # send ``data`` as a JSON body (APIs) instead of form fields
    path: object = None  # callable(world, user) -> full path, for routes reverse() cannot build


def own_token(user) -> int:
    """The id of a token of the requesting user (anonymous: any id, it never gets that far)."""
    if user is None:
        return 1
    return token_create(actor=user, user=user, name=f"matrix-{user.pk}")[0].pk


M = lambda w, u: [w.model.slug]  # noqa: E731
V = lambda w, u: v(w)  # noqa: E731
F = lambda w, u: [*v(w), "model.bin"]  # noqa: E731
