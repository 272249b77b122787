"""A version's model card: the page, the edit form (drafts only), the Markdown download and the
printable page. View role to read, edit role to write; outsiders get the 404 of a missing model.
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header

from approvals.selectors import version_signatures
from core.errors import Conflict
from models_app import cards, services
from models_app.access import Role, version_route
from models_app.models import CardSection, ModelVersion
from models_app.views.register import conflict_response

SECTION_HELP = {
    CardSection.INTENDED_USE: "What the model is for, and who should use it.",
    CardSection.OUT_OF_SCOPE: "Uses it was not built or tested for.",
    CardSection.TRAINING_DATA: "What it learned from: sources, time span, known gaps.",
    CardSection.EVALUATION: "How it was evaluated and what came out of it.",
    CardSection.ETHICS: "Risks, affected groups, fairness checks done.",
    CardSection.CAVEATS: "Known limits, and what users should do about them.",
}


class CardForm(forms.Form):
    notes = forms.CharField(
        label="Notes",
        required=False,
        max_length=services.CARD_NOTES_MAX,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Free Markdown: anything the sections above do not cover.",
    )

    def __init__(self, *args, required: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        sections = {}
        for key, label in CardSection.choices:
            sections[key] = forms.CharField(
                label=label + (" (required)" if key in required else ""),
                required=False,
                max_length=services.CARD_SECTION_MAX,
                widget=forms.Textarea(attrs={"rows": 4}),
                help_text=SECTION_HELP[key] + " Markdown.",
            )
        self.fields = {**sections, "notes": self.fields["notes"]}


def _crumbs(version: ModelVersion, *extra) -> list:
    return [
        ("Models", reverse("models_app:model_list")),
        (version.model.name, version.model.get_absolute_url()),
        (f"v{version.number}", version.get_absolute_url()),
        *extra,
    ]


@version_route(Role.VIEW, methods=["GET"])
def version_card(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    """The card as a page. View role; editing needs the edit role and a draft."""
    doc = cards.card_document(version, request.user, signatures=version_signatures(version))
    return render(
        request,
        "models_app/card.html",
        {
            "nav_section": "models",
            "breadcrumbs": _crumbs(version, ("Model card", None)),
            "model": version.model,
            "version": version,
            "doc": doc,
            "can_edit": Role.EDIT in version.model.user_roles and version.is_editable,
        },
    )


@version_route(Role.EDIT, methods=["GET", "POST"])
def card_edit(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    """Write the card of a draft. Edit role; a version past draft gets a 409 page."""
    card_url = reverse("models_app:version_card", args=[version.model.slug, version.number])
    if not version.is_editable:
        return conflict_response(
            request,
            f"Version {version.number} is {version.get_status_display().lower()}: its model card "
            "is frozen. Register a new version to change it.",
            card_url,
        )
    required = cards.required_sections(version.model)
    card = version.card if hasattr(version, "card") else None
    initial = {key: getattr(card, key) for key in [*CardSection.values, "notes"]} if card else {}
    form = CardForm(request.POST or None, initial=initial, required=required)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.card_update(
                    actor=request.user,
                    version=version,
                    sections={key: data[key] for key in CardSection.values},
                    notes=data["notes"],
                )
            except Conflict as e:
                return conflict_response(request, str(e), card_url)
            except ValidationError as e:
                for field, errors in e.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, f"Model card of v{version.number} saved.")
                return redirect(card_url)
        status = 400
    return render(
        request,
        "models_app/card_form.html",
        {
            "nav_section": "models",
            "breadcrumbs": _crumbs(version, ("Model card", card_url), ("Edit", None)),
            "model": version.model,
            "version": version,
            "form": form,
            "required": required,
        },
        status=status,
    )


@version_route(Role.VIEW, methods=["GET"])
def card_markdown(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    """The card as a Markdown file (a download). View role."""
    doc = cards.card_document(version, request.user, signatures=version_signatures(version))
    text = cards.card_markdown(doc, site_url=request.build_absolute_uri("/").rstrip("/"))
    response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(
        True, f"{version.model.slug}-v{version.number}-model-card.md"
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


@version_route(Role.VIEW, methods=["GET"])
def card_print(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    """The card as a printable page without the site's navigation. View role."""
    doc = cards.card_document(version, request.user, signatures=version_signatures(version))
    return render(
        request,
        "models_app/card_print.html",
        {"model": version.model, "version": version, "doc": doc},
    )
