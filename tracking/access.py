"""Who may see and change experiments, runs and logged models: the one fetch-and-check per
resource of the tracking API.

An experiment's roles are view, edit (start runs, log models) and manage (rename, delete,
restore, share), held by its creator, granted to users or teams as django-guardian object
permissions in this app's foreign-key tables (the role helpers of models_app.access: a role
implies the ones below it), and held by superusers. Experiment 0 (Default) may be viewed and
used by every signed-in user. A run or logged model is visible to whoever may view its
experiment, except in experiment 0, where only its creator (and superusers) see it; only its
creator (and superusers) may write to it. Who may not see something gets the same 404 as for
something that does not exist; who sees it but lacks the right gets 403.
"""

from collections.abc import Callable
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest
from django.views.decorators.http import require_http_methods

from core.rules import RUN_PAGE, access
from models_app.access import Role, visible_versions
from tracking.models import (
    DEFAULT_EXPERIMENT_ID,
    Experiment,
    ExperimentGroupObjectPermission,
    ExperimentUserObjectPermission,
    LoggedModel,
    Run,
)

EXPERIMENT_ROLES = (Role.VIEW, Role.EDIT, Role.MANAGE)
RUN_ID_LENGTH = 32
MAX_EXPERIMENT_ID = 2**31 - 1


def perm(role: Role) -> str:
    """The guardian codename of an experiment role."""
    return f"{role.value}_experiment"


def _active(user) -> bool:
    return user.is_authenticated and user.is_active


def visible_experiments(user) -> QuerySet[Experiment]:
    """Every experiment the user may view, as one queryset."""
    if not _active(user):
        return Experiment.objects.none()
    if user.is_superuser:
        return Experiment.objects.all()
    return Experiment.objects.filter(
        Q(pk=DEFAULT_EXPERIMENT_ID)
        | Q(creator=user)
        | Q(pk__in=ExperimentUserObjectPermission.objects.filter(
            user=user, permission__codename=perm(Role.VIEW)
        ).values("content_object_id"))
        | Q(pk__in=ExperimentGroupObjectPermission.objects.filter(
            group__user=user, permission__codename=perm(Role.VIEW)
        ).values("content_object_id"))
    )  # fmt: skip


def _visible_items(model, user) -> QuerySet:
    """Runs or logged models the user may view, as one lazy queryset (for subqueries): those of
    experiments they may view, except in experiment 0, where only their own; and their own
    wherever they are."""
    if not _active(user):
        return model.objects.none()
    if user.is_superuser:
        return model.objects.all()
    shared = visible_experiments(user).exclude(pk=DEFAULT_EXPERIMENT_ID)
    return model.objects.filter(Q(experiment__in=shared) | Q(creator=user))


def visible_runs(user) -> QuerySet[Run]:
    return _visible_items(Run, user)


def visible_logged_models(user) -> QuerySet[LoggedModel]:
    return _visible_items(LoggedModel, user)


def experiment_roles(user, experiment: Experiment) -> set[Role]:
    """The roles the user holds on the experiment (implied ones included)."""
    if not _active(user):
        return set()
    if user.is_superuser or (
        experiment.creator_id is not None and experiment.creator_id == user.pk
    ):
        return set(EXPERIMENT_ROLES)
    codenames = set(
        ExperimentUserObjectPermission.objects.filter(user=user, content_object=experiment)
        .values_list("permission__codename", flat=True)
        .union(
            ExperimentGroupObjectPermission.objects.filter(
                group__user=user, content_object=experiment
            ).values_list("permission__codename", flat=True),
            all=True,
        )
    )
    roles = {role for role in EXPERIMENT_ROLES if perm(role) in codenames}
    if experiment.is_default:
        roles |= {Role.VIEW, Role.EDIT}
    return roles


def _checked(user, experiment: Experiment, role: Role) -> Experiment:
    roles = experiment_roles(user, experiment)
    if Role.VIEW not in roles:
        raise Http404("No such experiment.")
    if role not in roles:
        raise PermissionDenied(f"This needs the {role.value} role on experiment {experiment}.")
    experiment.user_roles = roles
    experiment.roles_of = user.pk
    return experiment


def parse_experiment_id(raw: str) -> int | None:
    if not raw.isdigit() or len(raw) > 10 or int(raw) > MAX_EXPERIMENT_ID:
        return None
    return int(raw)


def get_experiment_for_user(user, experiment_id: str, role: Role = Role.VIEW) -> Experiment:
    """The experiment with this id (a string of digits, as MLflow sends it) if the user may
    view it (404 otherwise, as for one that does not exist) and holds ``role`` (403)."""
    pk = parse_experiment_id(experiment_id)
    experiment = (
        Experiment.objects.select_related("creator").filter(pk=pk).first()
        if pk is not None
        else None
    )
    if experiment is None:
        raise Http404(f"No experiment with id {experiment_id[:40]!r}.")
    return _checked(user, experiment, role)


def get_experiment_by_name_for_user(user, name: str, role: Role = Role.VIEW) -> Experiment:
    experiment = Experiment.objects.select_related("creator").filter(name=name).first()
    if experiment is None:
        raise Http404(f"No experiment named {name[:200]!r}.")
    try:
        return _checked(user, experiment, role)
    except Http404:
        raise Http404(f"No experiment named {name[:200]!r}.") from None


def _sees_item(user, experiment: Experiment, creator_id: int) -> bool:
    """Whether the user may view a run or logged model of this experiment made by
    ``creator_id``."""
    if user.is_superuser or creator_id == user.pk:
        return True
    if experiment.is_default:
        return False
    return Role.VIEW in experiment_roles(user, experiment)


def may_view_item(user, item: Run | LoggedModel) -> bool:
    """Whether the user may view this run or logged model (its experiment selected)."""
    return _active(user) and _sees_item(user, item.experiment, item.creator_id)


def _check_item(user, experiment: Experiment, creator_id: int, *, write: bool, what: str) -> None:
    if not _active(user) or not _sees_item(user, experiment, creator_id):
        raise Http404(f"No such {what}.")
    if write:
        require_creator(user, creator_id, what)


def require_creator(actor, creator_id: int, what: str) -> None:
    """The services' check before writing to a run or logged model: its creator or a
    superuser (403 otherwise; the views have already answered 404 to who may not see it)."""
    if not (_active(actor) and (actor.is_superuser or creator_id == actor.pk)):
        raise PermissionDenied(f"Only the creator of this {what} may change it.")


def require_experiment(actor, experiment: Experiment, role: Role) -> set[Role]:
    """The services' role check on an experiment (roles read with it are reused)."""
    roles = getattr(experiment, "user_roles", None)
    if roles is None or getattr(experiment, "roles_of", None) != actor.pk:
        roles = experiment_roles(actor, experiment)
    if role not in roles:
        raise PermissionDenied(f"This needs the {role.value} role on experiment {experiment}.")
    return roles


def get_run_for_user(user, run_id: str, *, write: bool = False) -> Run:
    """The run with this id if the user may view it (404 otherwise); with ``write``, 403 unless
    the user created it (or is a superuser)."""
    run = None
    if len(run_id) == RUN_ID_LENGTH:
        run = Run.objects.select_related("experiment", "creator").filter(pk=run_id).first()
    if run is None:
        raise Http404(f"Run {run_id[:40]!r} not found.")
    try:
        _check_item(user, run.experiment, run.creator_id, write=write, what="run")
    except Http404:
        raise Http404(f"Run {run_id[:40]!r} not found.") from None
    return run


def get_run_for_page(user, run_id: str) -> Run:
    """The run for its dashboard page: visible to who may view it through its experiment (as
    ``get_run_for_user``) and to whoever may view a version registered from it (a version
    whose ``source_run`` is this run's id), so a version's reviewers see how it was trained.
    404 for everyone else, as for a run that does not exist. ``run.sees_experiment`` says
    whether the user may also open its experiment's page (the roles read are kept on the
    experiment for the view)."""
    run = None
    if len(run_id) == RUN_ID_LENGTH and _active(user):
        run = Run.objects.select_related("experiment", "creator").filter(pk=run_id).first()
    if run is None:
        raise Http404(f"Run {run_id[:40]!r} not found.")
    experiment = run.experiment
    roles = experiment_roles(user, experiment)
    experiment.user_roles, experiment.roles_of = roles, user.pk
    run.sees_experiment = Role.VIEW in roles
    through_experiment = (
        user.is_superuser
        or run.creator_id == user.pk
        or (run.sees_experiment and not experiment.is_default)
    )
    if not through_experiment and not visible_versions(user).filter(source_run=run.pk).exists():
        raise Http404(f"Run {run_id[:40]!r} not found.")
    return run


def get_logged_model_for_user(user, model_id: str, *, write: bool = False) -> LoggedModel:
    """Like get_run_for_user, for a logged model ("m-" + 32 hex digits)."""
    found = None
    if len(model_id) == RUN_ID_LENGTH + 2 and model_id.startswith("m-"):
        found = (
            LoggedModel.objects.select_related("experiment", "creator", "source_run")
            .filter(pk=model_id)
            .first()
        )
    if found is None:
        raise Http404(f"Logged model {model_id[:40]!r} not found.")
    try:
        _check_item(user, found.experiment, found.creator_id, write=write, what="logged model")
    except Http404:
        raise Http404(f"Logged model {model_id[:40]!r} not found.") from None
    return found


def visible_items_q(user, experiments: list[Experiment]) -> Q:
    """Runs or logged models of these experiments (all visible to the user) that the user may
    view: all of them, except in experiment 0 only the user's own (superusers: all)."""
    if user.is_superuser:
        return Q(experiment__in=experiments)
    shared = [e for e in experiments if not e.is_default]
    q = Q(experiment__in=shared)
    if len(shared) != len(experiments):
        q |= Q(experiment_id=DEFAULT_EXPERIMENT_ID, creator=user)
    return q


# ---------------------------------------------------------------------------------------------
# Routes of the dashboard's pages: one decorator declares a view's rule (for the URL walk of
# the permission matrix) and enforces it, as models_app.access.model_route does for models.


def experiment_route(role: Role, *, methods: list[str]) -> Callable:
    """A page of one experiment, addressed by the URL's ``experiment_id``: signed in (else the
    login page), the method (else 405), then the experiment fetched through
    ``get_experiment_for_user`` with ``role`` (404 for who may not view it, 403 without the
    role) and handed to the view in place of the id."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def fetching(request: HttpRequest, experiment_id: str, **kwargs):
            experiment = get_experiment_for_user(request.user, experiment_id, role)
            return view(request, experiment, **kwargs)

        return access(f"experiment:{role.value}")(require_http_methods(methods)(fetching))

    return decorator


def run_page_route(view: Callable) -> Callable:
    """The run page, addressed by the URL's ``run_id``: signed in, GET or HEAD, the run fetched
    through ``get_run_for_page`` (404 for who may see neither it nor a version from it)."""

    @wraps(view)
    def fetching(request: HttpRequest, run_id: str, **kwargs):
        return view(request, get_run_for_page(request.user, run_id), **kwargs)

    return access(RUN_PAGE)(require_http_methods(["GET", "HEAD"])(fetching))
