"""Webhook subscriptions and their delivery logs.

A model's subscriptions need the manage role on it (outsiders 404, other viewers 403); global
subscriptions (every model's events) are for superusers only, and anyone else gets the same 404 as
for a page that does not exist. Each view exists twice, once per scope, around one shared
implementation: the model one gets the model from its route (manage role), the ``global_``
one None (superusers only, enforced by the SUPERUSER rule).
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals import webhooks
from approvals.models import Webhook, WebhookDelivery
from core.errors import RateLimited
from core.rules import SUPERUSER, access
from models_app.access import Role, model_route
from models_app.models import RegisteredModel

PAGE_SIZE = 25
EVENT_CHOICES = [(Webhook.ALL_EVENTS, "All events (including ones added later)")] + list(
    webhooks.EVENTS.items()
)


class WebhookForm(forms.Form):
    url = forms.CharField(
        label="Receiver URL",
        max_length=2000,
        required=False,
        widget=forms.URLInput(attrs={"placeholder": "https://deploy.example.com/hooks/registry"}),
        help_text="http:// or https://, on a public address. Redirects are not followed.",
    )
    events = forms.MultipleChoiceField(
        choices=EVENT_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )
    secret = forms.CharField(
        required=False,
        max_length=200,
        help_text="Leave empty to have one generated (recommended). Shown once.",
    )


class WebhookEditForm(forms.Form):
    url = WebhookForm.base_fields["url"]
    events = WebhookForm.base_fields["events"]
    active = forms.BooleanField(
        required=False,
        help_text="While paused, new events are not queued and queued deliveries wait.",
    )
    rotate_secret = forms.BooleanField(
        required=False,
        label="Generate a new secret",
        help_text="The old one stops working at once; the new one is shown once.",
    )


def get_webhook_for_user(model: RegisteredModel | None, pk: int) -> Webhook:
    """The one access helper for subscriptions: looked up within the scope the route let the
    user manage (``model``, fetched with the manage role, or None: the global scope, superusers
    only), so another model's (or a global) subscription is a 404 like a missing one."""
    hook = Webhook.objects.filter(pk=pk, model=model).select_related("created_by").first()
    if hook is None:
        raise Http404("No such webhook.")
    hook.model = model  # keep the roles attached
    return hook


def _url(name: str, model, *args) -> str:
    if model is None:
        return reverse(f"approvals:global_{name}", args=args)
    return reverse(f"approvals:{name}", args=[model.slug, *args])


def _breadcrumbs(model, *tail) -> list:
    if model is None:
        head = [("Audit log", reverse("approvals:audit")), ("Webhooks", _url("webhooks", None))]
    else:
        head = [
            ("Models", "/models/"),
            (model.name, model.get_absolute_url()),
            ("Webhooks", _url("webhooks", model)),
        ]
    crumbs = head + list(tail)
    return crumbs[:-1] + [(crumbs[-1][0], None)]  # the page itself is not a link


def _add_errors(form: forms.Form, error: ValidationError) -> None:
    for field, msgs in error.message_dict.items():
        for msg in msgs:
            form.add_error(field if field in form.fields else None, msg)


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"  # a page that may show a secret
    return response


# ---------------------------------------------------------------------------------------------
# The list with its create form


def _list(request: HttpRequest, model: RegisteredModel | None) -> HttpResponse:
    posted = request.POST if request.method == "POST" else None
    form = WebhookForm(posted, initial={"events": [Webhook.ALL_EVENTS]})
    new_secret = created = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                created, new_secret = webhooks.webhook_create(
                    actor=request.user, model=model, url=data["url"], events=data["events"],
                    secret=data["secret"],
                )  # fmt: skip
            except ValidationError as e:
                _add_errors(form, e)
            except PermissionDenied as e:
                form.add_error(None, str(e))
        if created is None:
            status = 400
        else:  # the secret is rendered in this response only: no redirect after POST
            created.detail_url = _url("webhook_detail", model, created.pk)
            form = WebhookForm(initial={"events": [Webhook.ALL_EVENTS]})
    hooks = list(Webhook.objects.filter(model=model).with_summary())
    for hook in hooks:
        hook.detail_url = _url("webhook_detail", model, hook.pk)
        hook.delete_url = _url("webhook_delete", model, hook.pk)
    context = {
        "nav_section": "models" if model else "audit",
        "model": model,
        "hooks": hooks,
        "form": form,
        "created": created,
        "new_secret": new_secret,
        "create_url": _url("webhooks", model),
        "breadcrumbs": _breadcrumbs(model),
    }
    return _no_store(render(request, "approvals/webhook_list.html", context, status=status))


@model_route(Role.MANAGE, methods=["GET", "POST"])
def webhooks_page(request: HttpRequest, model: RegisteredModel) -> HttpResponse:
    """Manage role: the model's subscriptions; POST subscribes a new URL."""
    return _list(request, model)


@access(SUPERUSER)
@require_http_methods(["GET", "POST"])
def global_webhooks(request: HttpRequest) -> HttpResponse:
    """Staff: subscriptions to every model's events; anyone else 404."""
    return _list(request, None)


# ---------------------------------------------------------------------------------------------
# One subscription: details, edit form, test button, delivery log


def _detail_page(
    request: HttpRequest, hook: Webhook, form=None, *, new_secret=None, status=200
) -> HttpResponse:
    model = hook.model
    if form is None:
        form = WebhookEditForm(
            initial={"url": hook.url, "events": hook.events, "active": hook.active}
        )
    page = Paginator(WebhookDelivery.objects.filter(webhook=hook), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    for delivery in page:
        delivery.redeliver_url = _url("webhook_redeliver", model, hook.pk, delivery.pk)
    context = {
        "nav_section": "models" if model else "audit",
        "model": model,
        "hook": hook,
        "form": form,
        "new_secret": new_secret,
        "page": page,
        "edit_url": _url("webhook_edit", model, hook.pk),
        "test_url": _url("webhook_test", model, hook.pk),
        "delete_url": _url("webhook_delete", model, hook.pk),
        "breadcrumbs": _breadcrumbs(model, (f"Webhook {hook.pk}", None)),
    }
    return _no_store(render(request, "approvals/webhook_detail.html", context, status=status))


def _detail(request: HttpRequest, model: RegisteredModel | None, pk: int) -> HttpResponse:
    return _detail_page(request, get_webhook_for_user(model, pk))


@model_route(Role.MANAGE, methods=["GET"])
def webhook_detail(request: HttpRequest, model: RegisteredModel, pk: int) -> HttpResponse:
    """Manage role: one subscription and its delivery log (paginated)."""
    return _detail(request, model, pk)


@access(SUPERUSER)
@require_GET
def global_webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Staff: one global subscription and its delivery log."""
    return _detail(request, None, pk)


def _edit(request: HttpRequest, model: RegisteredModel | None, pk: int) -> HttpResponse:
    hook = get_webhook_for_user(model, pk)
    form = WebhookEditForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            hook, secret = webhooks.webhook_update(
                actor=request.user, webhook=hook, url=data["url"], events=data["events"],
                active=data["active"], rotate_secret=data["rotate_secret"],
            )  # fmt: skip
        except ValidationError as e:
            _add_errors(form, e)
        except PermissionDenied as e:
            form.add_error(None, str(e))
        else:
            if secret:  # shown in this response only
                return _detail_page(request, hook, new_secret=secret)
            messages.success(request, "Webhook saved.")
            return redirect(_url("webhook_detail", hook.model, hook.pk))
    return _detail_page(request, hook, form, status=400)


@model_route(Role.MANAGE, methods=["POST"])
def webhook_edit(request: HttpRequest, model: RegisteredModel, pk: int) -> HttpResponse:
    """Manage role: change the URL, events, active flag; rotate the secret."""
    return _edit(request, model, pk)


@access(SUPERUSER)
@require_POST
def global_webhook_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Staff: change a global subscription."""
    return _edit(request, None, pk)


def _delete(request: HttpRequest, model: RegisteredModel | None, pk: int) -> HttpResponse:
    hook = get_webhook_for_user(model, pk)
    webhooks.webhook_delete(actor=request.user, webhook=hook)
    messages.success(request, f"Webhook to {hook.url} deleted with its delivery log.")
    return redirect(_url("webhooks", hook.model))


@model_route(Role.MANAGE, methods=["POST"])
def webhook_delete(request: HttpRequest, model: RegisteredModel, pk: int) -> HttpResponse:
    """Manage role: remove a subscription and its delivery log."""
    return _delete(request, model, pk)


@access(SUPERUSER)
@require_POST
def global_webhook_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Staff: remove a global subscription."""
    return _delete(request, None, pk)


def _too_many(request: HttpRequest, hook: Webhook, refusal: RateLimited) -> HttpResponse:
    """429: the subscription's page again, with the reason (nothing was queued)."""
    messages.error(request, str(refusal))
    response = _detail_page(request, hook, status=429)
    response["Retry-After"] = str(refusal.retry_after)
    return response


def _test(request: HttpRequest, model: RegisteredModel | None, pk: int) -> HttpResponse:
    hook = get_webhook_for_user(model, pk)
    try:
        webhooks.webhook_send_test(actor=request.user, webhook=hook)
    except RateLimited as e:
        return _too_many(request, hook, e)
    note = "" if hook.active else " It waits until the webhook is active again."
    messages.success(request, f"A ping is queued; the delivery worker sends it shortly.{note}")
    return redirect(_url("webhook_detail", hook.model, hook.pk))


@model_route(Role.MANAGE, methods=["POST"])
def webhook_test(request: HttpRequest, model: RegisteredModel, pk: int) -> HttpResponse:
    """Manage role: queue a ping for this subscription."""
    return _test(request, model, pk)


@access(SUPERUSER)
@require_POST
def global_webhook_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Staff: queue a ping for a global subscription."""
    return _test(request, None, pk)


def _redeliver(
    request: HttpRequest, model: RegisteredModel | None, pk: int, delivery: int
) -> HttpResponse:
    hook = get_webhook_for_user(model, pk)
    original = WebhookDelivery.objects.filter(pk=delivery, webhook=hook).first()
    if original is None:
        raise Http404("No such delivery.")
    original.webhook = hook
    try:
        webhooks.delivery_redeliver(actor=request.user, delivery=original)
    except RateLimited as e:
        return _too_many(request, hook, e)
    messages.success(request, f"A copy of the {original.event} delivery is queued.")
    return redirect(_url("webhook_detail", hook.model, hook.pk))


@model_route(Role.MANAGE, methods=["POST"])
def webhook_redeliver(
    request: HttpRequest, model: RegisteredModel, pk: int, delivery: int
) -> HttpResponse:
    """Manage role: queue a copy of one delivery."""
    return _redeliver(request, model, pk, delivery)


@access(SUPERUSER)
@require_POST
def global_webhook_redeliver(request: HttpRequest, pk: int, delivery: int) -> HttpResponse:
    """Staff: queue a copy of one delivery of a global subscription."""
    return _redeliver(request, None, pk, delivery)
