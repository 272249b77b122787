"""Who may do what to a registered model: the one access helper for models and everything
that belongs to them (versions, artifacts, reviews, aliases).

Roles are granted to users or teams (groups) as django-guardian object permissions on the
registered model, kept in the model's own foreign-key tables (models_app.models). A role
implies the permissions it needs, so granting "edit" stores view+edit. An *internal* model
is viewable by every signed-in user; a *private* one only through grants. Superusers hold
every role. Global (model-level) Django permissions grant nothing here (as with
guardian's accept_global_perms=False), so that a permission given to a user in the admin for
another reason never opens every model.

Every API call asks these questions, so the grants are read with SQL written here rather than
through guardian's helpers, which build the same queries through the ORM at several times the
cost (core/sql.py); tests/models_app/test_access_queries.py checks that both give the
same answers.

Views never fetch a model by id and check afterwards: they call get_model_for_user() (or the
version/artifact variants), which raises Http404 for anyone who may not view it, exactly as for
a model that does not exist, and PermissionDenied (403) for a viewer lacking the needed role.
"""

from collections.abc import Callable
from enum import StrEnum
from functools import wraps

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from django.http import Http404, HttpRequest
from django.views.decorators.http import require_http_methods

from audit.models import AuditEvent
from core import sql
from core.rules import access
from models_app.models import (
    Artifact,
    ModelVersion,
    RegisteredModel,
    RegisteredModelGroupObjectPermission,
    RegisteredModelUserObjectPermission,
)
from models_app.names import name_key

User = get_user_model()
MAX_NUMBER = 2**31 - 1  # version numbers are 32-bit integers in the database
UserGrant = RegisteredModelUserObjectPermission
TeamGrant = RegisteredModelGroupObjectPermission


class Role(StrEnum):
    VIEW = "view"
    EDIT = "edit"
    REVIEW = "review"
    PROMOTE = "promote"
    MANAGE = "manage"

    @property
    def perm(self) -> str:
        return f"{self.value}_registeredmodel"

    @property
    def implied(self) -> tuple["Role", ...]:
        """The roles this one includes (itself first)."""
        return ROLE_IMPLIES[self]

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_IMPLIES: dict[Role, tuple[Role, ...]] = {
    Role.VIEW: (Role.VIEW,),
    Role.EDIT: (Role.EDIT, Role.VIEW),
    Role.REVIEW: (Role.REVIEW, Role.VIEW),
    Role.PROMOTE: (Role.PROMOTE, Role.VIEW),
    Role.MANAGE: (Role.MANAGE, Role.EDIT, Role.REVIEW, Role.PROMOTE, Role.VIEW),
}
ROLE_LABELS = {
    Role.VIEW: "View: see the model, its versions and files",
    Role.EDIT: "Edit: register versions, edit drafts, submit for review",
    Role.REVIEW: "Review: approve or reject versions in review",
    Role.PROMOTE: "Promote: move production/staging, roll back",
    Role.MANAGE: "Manage: settings, sharing, review policy, delete",
}


def visible_models(user: AbstractBaseUser | AnonymousUser) -> QuerySet[RegisteredModel]:
    """Every model the user may view, as one queryset (no per-row permission checks)."""
    if not user.is_authenticated or not user.is_active:
        return RegisteredModel.objects.none()
    if user.is_superuser:
        return RegisteredModel.objects.all()
    return RegisteredModel.objects.filter(
        Q(visibility=RegisteredModel.Visibility.INTERNAL) | Q(pk__in=_granted_ids(user, Role.VIEW))
    )


def _granted_ids(user, role: Role) -> RawSQL:
    """Ids of the models on which ``role`` is granted to the user or one of their teams: what
    guardian's get_objects_for_user(user, role.perm, accept_global_perms=False,
    with_superuser=False) selects, as a subquery written by hand (core/sql.py; a test
    compares the two). UNION ALL: a model granted both ways may come twice, which ``IN`` does
    not mind, and PostgreSQL skips removing duplicates it would hash again anyway."""
    return RawSQL(  # noqa: S611 (names from model metadata, values as parameters)
        f"SELECT o.content_object_id FROM {sql.table(UserGrant)} o "  # noqa: S608
        f"JOIN {sql.table(Permission)} p ON p.id = o.permission_id "
        "WHERE o.user_id = %s AND p.codename = %s "
        "UNION ALL "
        f"SELECT o.content_object_id FROM {sql.table(TeamGrant)} o "
        f"JOIN {sql.table(Permission)} p ON p.id = o.permission_id "
        f"JOIN {sql.table(User.groups.through)} m ON m.group_id = o.group_id "
        "WHERE m.user_id = %s AND p.codename = %s",
        [user.pk, role.perm] * 2,
    )


def roles_for(user, model: RegisteredModel) -> set[Role]:
    """The roles the user holds on the model (with implied ones)."""
    if not _needs_grants(user):
        return _roles(user, model, set())
    return _roles(user, model, _granted_perms(user, model))


def _needs_grants(user) -> bool:
    return user.is_authenticated and user.is_active and not user.is_superuser


def _roles(user, model: RegisteredModel, perms: set[str]) -> set[Role]:
    if not user.is_authenticated or not user.is_active:
        return set()
    if user.is_superuser:
        return set(Role)
    roles = {role for role in Role if role.perm in perms}
    if model.visibility == RegisteredModel.Visibility.INTERNAL:
        roles.add(Role.VIEW)
    return roles


def _grants_sql(model_id: str) -> str:
    """The codenames granted on one model to a user directly or through their teams: what
    guardian's ObjectPermissionChecker(user).get_perms(model) reads, in one statement (a
    codename granted both ways comes twice; callers make a set). Parameters: user id,
    ``model_id``'s, twice."""
    return (
        f"SELECT p.codename FROM {sql.table(UserGrant)} o "  # noqa: S608 (sql.py)
        f"JOIN {sql.table(Permission)} p ON p.id = o.permission_id "
        f"WHERE o.user_id = %s AND o.content_object_id = {model_id} "
        "UNION ALL "
        f"SELECT p.codename FROM {sql.table(TeamGrant)} o "
        f"JOIN {sql.table(Permission)} p ON p.id = o.permission_id "
        f"JOIN {sql.table(User.groups.through)} m ON m.group_id = o.group_id "
        f"WHERE m.user_id = %s AND o.content_object_id = {model_id}"
    )


def _granted_perms(user, model: RegisteredModel) -> set[str]:
    rows = sql.fetch(_grants_sql("%s"), [user.pk, model.pk] * 2)
    return {codename for (codename,) in rows}


def require(actor, model: RegisteredModel, role: Role) -> set[Role]:
    """The one role check of the services: 403 unless ``actor`` holds ``role`` on ``model``;
    the actor's roles. Roles read with the model for this actor (get_model_*_for_user, the
    route decorators) are reused; otherwise they are read once here."""
    if getattr(model, "roles_of", None) == actor.pk:
        roles = model.user_roles
    else:
        roles = roles_for(actor, model)
    if role not in roles:
        raise PermissionDenied(f"This needs the {role.value} role on {model.name}.")
    return roles


def _check(model: RegisteredModel, roles: set[Role], role: Role) -> set[Role]:
    if Role.VIEW not in roles:
        raise Http404("No such model.")
    if role not in roles:
        raise PermissionDenied(f"This needs the {role.value} role on {model.name}.")
    return roles


def get_model_for_user(user, slug: str, role: Role = Role.VIEW) -> RegisteredModel:
    """The model with this slug if the user may view it (404 otherwise) and holds ``role``
    (403 otherwise). The held roles are attached as ``model.user_roles``."""
    # One row by its unique slug with the user's grants on it (404 without view): cheaper than
    # filtering through visible_models(), and the same answer.
    return _model_for_user(user, "slug", slug, role)


def get_model_by_name_for_user(user, name: str, role: Role = Role.VIEW) -> RegisteredModel:
    """Like get_model_for_user, for APIs that address models by name: the name is compared the
    way names clash (case, width, look-alikes, separators), so the slug works too."""
    return _model_for_user(user, "name_key", name_key(name), role)


def _model_for_user(user, column: str, value: str, role: Role) -> RegisteredModel:
    """``RegisteredModel.objects.select_related("owner", "team").get(<column>=value)`` for a
    unique column (a name from this module, never input) and the user's grants on that model,
    in one hand-written statement (core/sql.py): one row per granted codename."""
    # audit_head: the newest audit event of the model. Every change to a model writes one, so
    # it names the state the model is in (registry_site/mlflow_compat/cache.py uses it).
    select = (
        f"SELECT {sql.columns(RegisteredModel, 'm')}, {sql.columns(User, 'u')}, "  # noqa: S608
        f"{sql.columns(Group, 'g')}, (SELECT MAX(e.seq) FROM {sql.table(AuditEvent)} e "
        "WHERE e.model_id = m.id)"
    )
    joins = (
        f" FROM {sql.table(RegisteredModel)} m "
        f"JOIN {sql.table(User)} u ON u.id = m.owner_id "
        f"LEFT JOIN {sql.table(Group)} g ON g.id = m.team_id"
    )
    if _needs_grants(user):
        key = f"(SELECT id FROM {sql.table(RegisteredModel)} WHERE {column} = %s)"  # noqa: S608
        rows = sql.fetch(
            f"{select}, grants.codename{joins} LEFT JOIN ({_grants_sql(key)}) grants ON 1 = 1 "
            f"WHERE m.{column} = %s",
            [*[user.pk, value] * 2, value],
        )
    else:
        rows = sql.fetch(f"{select}, NULL{joins} WHERE m.{column} = %s", [value])
    if not rows:
        raise Http404("No such model.")
    row = rows[0]
    model = sql.instance(RegisteredModel, row)
    model.owner = sql.instance(User, row, sql.width(RegisteredModel))
    team_at = sql.width(RegisteredModel) + sql.width(User)
    model.team = sql.instance(Group, row, team_at) if model.team_id is not None else None
    model.audit_head = row[-2]
    perms = {r[-1] for r in rows if r[-1] is not None}
    model.user_roles = _check(model, _roles(user, model, perms), role)
    model.roles_of = user.pk  # whose roles these are (``require`` reuses them)
    return model


def get_version(model: RegisteredModel, number: int) -> ModelVersion:
    """Version ``number`` of a model fetched through the access helpers (404 when it has none);
    the version keeps that model, with the roles read with it."""
    if not 1 <= number <= MAX_NUMBER:  # cannot exist (and would overflow the lookup)
        raise Http404("No such version.")
    version = ModelVersion.objects.filter(model=model, number=number).first()
    if version is None:
        raise Http404("No such version.")
    version.model = model
    return version


def get_version_for_user(user, slug: str, number: int, role: Role = Role.VIEW) -> ModelVersion:
    return get_version(get_model_for_user(user, slug, role), number)


def get_artifact(version: ModelVersion, path: str) -> Artifact:
    """A file of a version fetched through get_version_for_user (or version_route): 404 when
    it has no file at ``path``."""
    artifact = Artifact.objects.filter(version=version, path=path).first()
    if artifact is None:
        raise Http404("No such file.")
    artifact.version = version
    return artifact


def visible_versions(user) -> QuerySet[ModelVersion]:
    """Versions of every model the user may view (for compare, datasets, lineage, search)."""
    return ModelVersion.objects.filter(model__in=visible_models(user))


def models_with_role(user, role: Role) -> QuerySet[RegisteredModel]:
    """Models on which the user holds ``role`` (directly or through a team)."""
    if not user.is_authenticated or not user.is_active:
        return RegisteredModel.objects.none()
    if user.is_superuser:
        return RegisteredModel.objects.all()
    if role == Role.VIEW:
        return visible_models(user)
    return RegisteredModel.objects.filter(pk__in=_granted_ids(user, role))


def users_with_role(model: RegisteredModel, role: Role) -> QuerySet:
    """Active users who hold ``role`` on the model now (the inverse of models_with_role):
    superusers, grantees directly or through a team, and for view on an internal model every
    active user. One queryset, so callers filter a set of candidates in one query."""
    granted = Q(
        pk__in=UserGrant.objects.filter(
            content_object=model, permission__codename=role.perm
        ).values("user_id")
    ) | Q(
        pk__in=User.groups.through.objects.filter(
            group_id__in=TeamGrant.objects.filter(
                content_object=model, permission__codename=role.perm
            ).values("group_id")
        ).values("user_id")
    )
    active = User.objects.filter(is_active=True)
    if role == Role.VIEW and model.visibility == RegisteredModel.Visibility.INTERNAL:
        return active
    return active.filter(Q(is_superuser=True) | granted)


def granted_pairs(role: Role, user_ids, model_ids) -> set[tuple[int, int]]:
    """Which (user id, model id) pairs among these users and models have ``role`` granted,
    directly or through a team, in one query, for a batch job checking many at once. Grants
    only: superusers and internal visibility are the caller's to add (it has the rows)."""
    user_ids, model_ids = set(user_ids), set(model_ids)
    if not user_ids or not model_ids:
        return set()
    direct = UserGrant.objects.filter(
        permission__codename=role.perm, user_id__in=user_ids, content_object_id__in=model_ids
    ).values_list("user_id", "content_object_id")
    through_team = TeamGrant.objects.filter(
        permission__codename=role.perm,
        group__user__id__in=user_ids,
        content_object_id__in=model_ids,
    ).values_list("group__user__id", "content_object_id")
    return set(direct.union(through_team, all=True))


# ---------------------------------------------------------------------------------------------
# Routes: one decorator declares a view's rule (for the URL walk of the permission matrix) and
# enforces it, so a view cannot declare one role and fetch with another.


def model_route(role: Role, *, methods: list[str], rule: str | None = None) -> Callable:
    """A view of one model, addressed by the URL's ``slug``, answering ``methods``: signed in
    (else the login page), then the method (else 405), then the model fetched through
    ``get_model_for_user`` with ``role`` (404 for who may not view it, 403 without the role)
    and handed to the view in place of the slug. ``rule`` names the declared rule where it is
    not simply the role's (aliases: the role needed depends on the alias)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def fetching(request: HttpRequest, slug: str, **kwargs):
            return view(request, get_model_for_user(request.user, slug, role), **kwargs)

        return access(rule or f"model:{role.value}")(require_http_methods(methods)(fetching))

    return decorator


def version_route(role: Role, *, methods: list[str]) -> Callable:
    """Like ``model_route``, for a version addressed by ``slug`` and ``number``: the view gets
    the version (its ``model`` carries the roles read with it)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def fetching(request: HttpRequest, slug: str, number: int, **kwargs):
            version = get_version_for_user(request.user, slug, number, role)
            return view(request, version, **kwargs)

        return access(f"model:{role.value}")(require_http_methods(methods)(fetching))

    return decorator
