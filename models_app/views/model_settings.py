"""Creating, editing and deleting registered models."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from core.errors import Conflict
from core.rules import LOGIN, access
from models_app import services
from models_app.access import Role, model_route
from models_app.forms import DirectionFormSet, ModelForm, TagFormSet
from models_app.models import RegisteredModel


def _model_page(request, model, form, tags, directions, *, status=200) -> HttpResponse:
    crumbs = [("Models", reverse("models_app:model_list"))]
    if model is None:
        crumbs.append(("New model", None))
    else:
        crumbs += [(model.name, model.get_absolute_url()), ("Settings", None)]
    return render(
        request,
        "models_app/model_form.html",
        {
            "model": model,
            "form": form,
            "tags": tags,
            "directions": directions,
            "nav_section": "models",
            "breadcrumbs": crumbs,
        },
        status=status,
    )


def _rows(tags, directions) -> tuple[dict[str, str], dict[str, bool]]:
    return (
        {row["key"]: row["value"] for _, row in tags.rows()},
        {row["metric"]: row["direction"] == "higher" for _, row in directions.rows()},
    )


@access(LOGIN)
@require_http_methods(["GET", "POST"])
def model_create(request: HttpRequest) -> HttpResponse:
    """Any signed-in user may create a model; they become its manager."""
    if request.method == "POST":
        form = ModelForm(request.POST, user=request.user)
        tags = TagFormSet(request.POST, prefix="tags")
        directions = DirectionFormSet(request.POST, prefix="directions")
        if all([form.is_valid(), tags.is_valid(), directions.is_valid()]):
            tag_map, direction_map = _rows(tags, directions)
            try:
                model = services.model_create(
                    actor=request.user,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    task=form.cleaned_data["task"],
                    visibility=form.cleaned_data["visibility"],
                    team=form.cleaned_data["team"],
                    tags=tag_map,
                    metric_directions=direction_map,
                )
            except ValidationError as e:
                form.add_errors(e)
            else:
                messages.success(request, f"Created {model.name}. Register its first version.")
                return redirect(model)
        return _model_page(request, None, form, tags, directions, status=400)
    form = ModelForm(
        user=request.user,
        initial={
            "task": RegisteredModel.Task.CLASSIFICATION,
            "visibility": RegisteredModel.Visibility.PRIVATE,
        },
    )
    return _model_page(
        request, None, form, TagFormSet(prefix="tags"), DirectionFormSet(prefix="directions")
    )


@model_route(Role.MANAGE, methods=["GET", "POST"])
def model_edit(request: HttpRequest, model: RegisteredModel) -> HttpResponse:
    """Change a model's settings. Manage role."""
    if request.method == "POST":
        form = ModelForm(request.POST, user=request.user, current_team=model.team)
        tags = TagFormSet(request.POST, prefix="tags")
        directions = DirectionFormSet(request.POST, prefix="directions")
        if all([form.is_valid(), tags.is_valid(), directions.is_valid()]):
            tag_map, direction_map = _rows(tags, directions)
            try:
                updated = services.model_update(
                    actor=request.user,
                    model=model,
                    tags=tag_map,
                    **{f: form.cleaned_data[f] for f in services.MODEL_FIELDS},
                )
                current = dict(model.metric_specs.values_list("name", "higher_is_better"))
                for metric, higher in direction_map.items():
                    if current.get(metric) != higher:
                        services.metric_direction_set(
                            actor=request.user,
                            model=updated,
                            metric=metric,
                            higher_is_better=higher,
                        )
            except ValidationError as e:
                form.add_errors(e)
            else:
                messages.success(request, f"Saved {updated.name}.")
                return redirect(updated)
        return _model_page(request, model, form, tags, directions, status=400)
    form = ModelForm(
        user=request.user,
        current_team=model.team,
        initial={
            "name": model.name,
            "description": model.description,
            "task": model.task,
            "visibility": model.visibility,
            "team": model.team_id,
        },
    )
    tags = TagFormSet(
        prefix="tags", initial=[{"key": t.key, "value": t.value} for t in model.tags.all()]
    )
    directions = DirectionFormSet(
        prefix="directions",
        initial=[
            {"metric": s.name, "direction": "higher" if s.higher_is_better else "lower"}
            for s in model.metric_specs.all()
        ],
    )
    return _model_page(request, model, form, tags, directions)


@model_route(Role.MANAGE, methods=["POST"])
def model_delete(request: HttpRequest, model: RegisteredModel) -> HttpResponse:
    """Delete a model with all its versions and files, after its name is typed. Manage role."""
    if request.POST.get("confirm", "").strip() != model.name:
        messages.error(
            request, f"Type the model's name, {model.name}, to confirm. Nothing was deleted."
        )
        return redirect("models_app:model_edit", model.slug)
    try:
        services.model_delete(
            actor=request.user, model=model, reason=request.POST.get("reason", "")[:1000]
        )
    except Conflict as e:
        messages.error(request, f"{e} Nothing was deleted.")
        return redirect("models_app:model_edit", model.slug)
    messages.success(
        request,
        f"Deleted {model.name} with its versions and files. Its name stays reserved: "
        "an administrator may release it.",
    )
    return redirect("models_app:model_list")
