"""Datasets: shared by every model, visible to every signed-in user. What a dataset page says
about versions is scoped to the models the viewer may view. Their owners (who registered them,
members of their team, superusers) may correct them."""

from django import forms
from django.contrib import messages
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from core import keyset
from core.errors import Conflict
from core.rules import DATASET_OWNER, LOGIN, access
from models_app import selectors, services
from models_app.models import Dataset, VersionDataset
from models_app.views.register import conflict_response

PAGE_SIZE = 25


def _crumbs(*extra) -> list:
    return [("Datasets", reverse("models_app:dataset_list") if extra else None), *extra]


@access(LOGIN)
@require_GET
def dataset_list(request: HttpRequest) -> HttpResponse:
    """Any signed-in user."""
    q = request.GET.get("q", "").strip()[:200]
    datasets = Dataset.objects.select_related("created_by")
    if q:
        datasets = datasets.filter(Q(name__icontains=q) | Q(uri__icontains=q))
    page = Paginator(datasets, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "models_app/dataset_list.html",
        {"nav_section": "datasets", "breadcrumbs": _crumbs(), "page": page, "q": q},
    )


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=200)
    uri = forms.CharField(label="URI", max_length=1000, required=False)
    digest = forms.CharField(max_length=200, required=False, help_text="e.g. sha256:…")
    row_count = forms.IntegerField(label="Rows", min_value=0, required=False)
    description = forms.CharField(widget=forms.Textarea, required=False)


def _add_errors(form: forms.Form, error: ValidationError) -> None:
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


@access(LOGIN)
@require_http_methods(["GET", "POST"])
def dataset_create(request: HttpRequest) -> HttpResponse:
    """Any signed-in user."""
    form = DatasetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            dataset = services.dataset_create(actor=request.user, **form.cleaned_data)
        except ValidationError as e:
            _add_errors(form, e)
        else:
            messages.success(request, f"Dataset {dataset.name} registered.")
            return redirect(dataset)
    return render(
        request,
        "models_app/dataset_form.html",
        {"nav_section": "datasets", "breadcrumbs": _crumbs(("New", None)), "form": form},
    )


@access(LOGIN)
@require_GET
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Any signed-in user; lists only versions of models they may view, and says nothing
    (not even how many) about the others."""
    dataset = get_object_or_404(Dataset.objects.select_related("created_by", "team"), pk=pk)
    page = _links_page(request, dataset)
    return render(
        request,
        "models_app/dataset_detail.html",
        {
            "nav_section": "datasets",
            "breadcrumbs": _crumbs((dataset.name, None)),
            "dataset": dataset,
            "page": page,
            "may_edit": services.may_correct_dataset(request.user, dataset),
        },
    )


def _links_page(request: HttpRequest, dataset: Dataset) -> keyset.Page:
    """The page of links that ``?after=`` / ``?before=`` a cursor asks for (the page's own
    Next and Previous links); the first page otherwise, and for a cursor that does not
    decode, as on the dashboard's other keyset pages."""
    for direction in ("after", "before"):
        cursor = request.GET.get(direction)
        values = keyset.decode(cursor, VersionDataset, selectors.LINK_KEYS) if cursor else None
        if values is not None:
            return selectors.dataset_links_page(
                request.user, dataset, size=PAGE_SIZE, **{direction: values}
            )
    return selectors.dataset_links_page(request.user, dataset, size=PAGE_SIZE)


class DatasetEditForm(forms.Form):
    uri = forms.CharField(label="URI", max_length=1000, required=False)
    digest = forms.CharField(max_length=200, required=False, help_text="e.g. sha256:…")
    description = forms.CharField(widget=forms.Textarea, required=False, help_text="Markdown.")
    team = forms.ModelChoiceField(
        queryset=Group.objects.none(),
        required=False,
        help_text="A team you belong to; its members may correct the dataset with you.",
    )

    def __init__(self, *args, user, current_team: Group | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        teams = Group.objects.all() if user.is_superuser else user.groups.all()
        if current_team is not None:  # the current team stays choosable
            teams = Group.objects.filter(pk__in=teams.values("pk")) | Group.objects.filter(
                pk=current_team.pk
            )
        self.fields["team"].queryset = teams.order_by("name").distinct()


@access(DATASET_OWNER)
@require_http_methods(["GET", "POST"])
def dataset_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The dataset's owner: who registered it, members of its team, superusers. Others get
    403 (the dataset itself is no secret: every signed-in user sees it)."""
    dataset = get_object_or_404(Dataset.objects.select_related("created_by", "team"), pk=pk)
    if not services.may_correct_dataset(request.user, dataset):
        raise PermissionDenied("Only the dataset's owner, its team or a superuser may change it.")
    initial = {"uri": dataset.uri, "digest": dataset.digest,
               "description": dataset.description, "team": dataset.team}  # fmt: skip
    form = DatasetEditForm(
        request.POST or None, initial=initial, user=request.user, current_team=dataset.team
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.dataset_update(actor=request.user, dataset=dataset, **form.cleaned_data)
            except Conflict as e:
                return conflict_response(request, str(e), dataset.get_absolute_url())
            except ValidationError as e:
                _add_errors(form, e)
            else:
                messages.success(request, f"Dataset {dataset.name} saved.")
                return redirect(dataset)
        status = 400
    return render(
        request,
        "models_app/dataset_edit.html",
        {
            "nav_section": "datasets",
            "breadcrumbs": _crumbs((dataset.name, dataset.get_absolute_url()), ("Edit", None)),
            "dataset": dataset,
            "form": form,
        },
        status=status,
    )
