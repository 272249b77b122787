"""Declared access rules for every route.

Each view declares who may reach it with ``@access(...)``; the decorator both records the rule
(so a test can walk the URL resolver and fail on any route without one: tests/routes.py) and
enforces the part that does not depend on an object: anonymous visitors are sent to the login
page unless the rule is PUBLIC, anyone but superusers gets a 404 on SUPERUSER routes. Object
rules are declared and enforced together with the fetch of the model by
``models_app.access.model_route`` / ``version_route`` (and the JSON API's ``requires``).
"""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404

PUBLIC = "public"  # anyone, signed in or not (login page, /healthz)
LOGIN = "login"  # any signed-in user; what they see is scoped to them
STAFF = "staff"  # the Django admin's own rule (declared by its URL prefix; the admin enforces it)
SUPERUSER = "superuser"  # registry-wide pages (global webhooks): superusers only, others a 404
# Object rules: signed in, and the model (or version) fetched through models_app.access with the
# named role (404 for those who may not view it, 403 for viewers without the role), declared and
# enforced by one decorator (models_app.access.model_route / version_route).
MODEL_VIEW = "model:view"
MODEL_EDIT = "model:edit"
MODEL_REVIEW = "model:review"
MODEL_PROMOTE = "model:promote"
MODEL_MANAGE = "model:manage"
# Aliases: edit for ordinary ones, promote for production/staging (decided by the alias named).
MODEL_ALIAS = "model:alias"
# Changing a dataset: signed in, and its owner (who registered it, a member of its team, or a
# superuser; the service checks it). Others get 403: every signed-in user sees datasets.
DATASET_OWNER = "dataset:owner"


def _superuser_only(view: Callable) -> Callable:
    @wraps(view)
    def inner(request, *args, **kwargs):
        if not request.user.is_superuser:
            raise Http404("No such page.")  # others see no sign that the page exists
        return view(request, *args, **kwargs)

    return inner


def access(rule: str) -> Callable:
    """Declare (and enforce) the access rule of a view: PUBLIC lets anyone in, every other rule
    needs a signed-in user, SUPERUSER also a superuser (others get a 404: staff who are not
    superusers too). Object rules are declared and
    enforced together by ``models_app.access.model_route`` / ``version_route``."""

    def decorator(view: Callable) -> Callable:
        if rule == PUBLIC:
            wrapped = view
        elif rule == SUPERUSER:
            wrapped = login_required(_superuser_only(view))
        else:
            wrapped = login_required(view)

        @wraps(view)
        def inner(*args, **kwargs):
            return wrapped(*args, **kwargs)

        inner.access_rule = rule
        return inner

    return decorator


# Experiment tracking (the MLflow API): an experiment fetched through tracking.access with the
# named role; a run or logged model visible through its experiment (or to its creator), and
# written only by its creator (or a superuser). 404 for who may not see it, 403 otherwise.
EXPERIMENT_VIEW = "experiment:view"
EXPERIMENT_EDIT = "experiment:edit"
EXPERIMENT_MANAGE = "experiment:manage"
RUN_VIEW = "run:view"
RUN_WRITE = "run:write"
# The dashboard's run page: who may view the run through its experiment (RUN_VIEW), and also
# whoever may view a version registered from the run (tracking.access.get_run_for_page).
RUN_PAGE = "run:page"
