"""Datasets: shared by every model, visible to every signed-in user. What a dataset page says
about versions is scoped to the models the viewer may view."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from core.rules import LOGIN, access
from models_app import services
from models_app.access import visible_models
from models_app.models import Dataset, VersionDataset

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
    dataset = get_object_or_404(Dataset.objects.select_related("created_by"), pk=pk)
    links = (
        VersionDataset.objects.filter(
            dataset=dataset, version__model__in=visible_models(request.user)
        )
        .select_related("version__model", "version__created_by")
        .order_by("version__model__name_key", "-version__number", "role")
    )
    page = Paginator(links, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "models_app/dataset_detail.html",
        {
            "nav_section": "datasets",
            "breadcrumbs": _crumbs((dataset.name, None)),
            "dataset": dataset,
            "page": page,
        },
    )
