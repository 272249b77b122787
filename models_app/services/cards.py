"""Model cards: a version's sections, and the sections a model requires."""

from django.core.exceptions import ValidationError
from django.db import transaction

from audit import chain
from core.errors import Conflict
from models_app.access import Role, require
from models_app.models import (
    CardSection,
    CardTemplate,
    ModelCard,
    ModelVersion,
    RegisteredModel,
)
from models_app.services.contributors import contributed

CARD_SECTION_MAX = 20_000


CARD_NOTES_MAX = 50_000


def _card_state(card: ModelCard) -> dict:
    return {key: getattr(card, key) for key in [*CardSection.values, "notes"]}


def _clean_card_text(sections: dict[str, str], notes: str) -> dict[str, str]:
    unknown = set(sections) - set(CardSection.values)
    if unknown:
        raise ValidationError({"card": [f"Unknown sections: {', '.join(sorted(unknown))}."]})
    errors: dict[str, list[str]] = {}
    cleaned = {}
    for key, value in [*sections.items(), ("notes", notes)]:
        value = (value or "").strip()
        limit = CARD_NOTES_MAX if key == "notes" else CARD_SECTION_MAX
        if "\x00" in value:
            errors[key] = ["must not contain NUL characters"]
        elif len(value) > limit:
            errors[key] = [f"is at most {limit:,} characters (got {len(value):,})"]
        cleaned[key] = value
    if errors:
        raise ValidationError(errors)
    return cleaned


def card_update(
    *, actor, version: ModelVersion, sections: dict[str, str], notes: str | None = None
) -> ModelCard:
    """Write a draft's model card (the sections given; ``notes`` is the free Markdown). Edit
    role; once the version leaves draft its card is frozen like its files."""
    require(actor, version.model, Role.EDIT)
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)
        if not locked.is_editable:
            raise Conflict(
                f"Version {locked.number} is {locked.get_status_display().lower()}: its model "
                "card is frozen. Register a new version to change it."
            )
        card = ModelCard.objects.select_for_update().filter(version=locked).first()
        card = card or ModelCard(version=locked)
        before = _card_state(card)
        cleaned = _clean_card_text(sections, before["notes"] if notes is None else notes)
        for key, value in cleaned.items():
            setattr(card, key, value)
        after = _card_state(card)
        changed = [k for k in after if after[k] != before[k]]
        if not changed and card.pk:
            return card
        card.updated_by = actor
        card.save()
        contributed(locked, actor)
        chain.record(
            actor=actor,
            action="card.updated",
            target=locked,
            model=locked.model,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
    return card


def card_template_update(
    *, actor, model: RegisteredModel, required_sections: list[str]
) -> CardTemplate:
    """Set which card sections every version of the model must fill before approval (the
    documentation gate checks them). Manage role."""
    require(actor, model, Role.MANAGE)
    wanted = [s for s in CardSection.values if s in set(required_sections)]
    unknown = set(required_sections) - set(CardSection.values)
    if unknown:
        raise ValidationError(
            {"required_sections": [f"Unknown sections: {', '.join(sorted(unknown))}."]}
        )
    with transaction.atomic():
        template = CardTemplate.objects.select_for_update().filter(model=model).first()
        before = list(template.required_sections) if template else []
        if template is not None and before == wanted:
            return template
        template = template or CardTemplate(model=model)
        template.required_sections = wanted
        template.save()
        chain.record(
            actor=actor,
            action="card_template.updated",
            target=model,
            model=model,
            before={"required_sections": before},
            after={"required_sections": wanted},
        )
    return template
