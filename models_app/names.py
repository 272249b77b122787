"""Model names: what a user may type, and the key that decides whether two names clash.

Two names clash when they look alike to a person: the same after Unicode NFKC normalisation,
case folding, mapping the Cyrillic and Greek letters that are drawn like Latin ones, and
treating runs of separators (space, '-', '_', '.') as one. The key is stored in a unique column,
so the database, not only this code, refuses a look-alike.
"""

import re
import unicodedata

from django.core.exceptions import ValidationError

MAX_NAME_LENGTH = 100

# Letters of other scripts that are drawn like Latin letters (after case folding).
_HOMOGLYPHS = str.maketrans(
    {
        # Cyrillic
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
        "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i",
        "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ү": "y", "һ": "h", "ӏ": "l",
        # Greek
        "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
        "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ϲ": "c", "ϳ": "j", "μ": "u",
        # Latin look-alikes
        "ı": "i", "ℓ": "l", "ɡ": "g", "ʟ": "l",
    }
)  # fmt: skip
_SEPARATORS = re.compile(r"[\s\-_.]+")
_ALLOWED = re.compile(r"^[\w][\w .\-]*$")


def normalize_display_name(name: str) -> str:
    """The form we store and show: NFKC, trimmed, inner whitespace collapsed."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", name)).strip()


def name_key(name: str) -> str:
    folded = unicodedata.normalize("NFKC", name).casefold()
    folded = unicodedata.normalize("NFKC", folded).translate(_HOMOGLYPHS)
    return _SEPARATORS.sub("-", folded).strip("-")


def validate_model_name(name: str) -> str:
    """Return the normalised display name, or raise ValidationError saying what is wrong."""
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs") for ch in name):
        raise ValidationError(
            "Names cannot contain control or invisible characters.", code="invisible"
        )
    display = normalize_display_name(name)
    if not display:
        raise ValidationError("A name is required.", code="required")
    if len(display) > MAX_NAME_LENGTH:
        raise ValidationError(
            f"Names are at most {MAX_NAME_LENGTH} characters (this one has {len(display)}).",
            code="max_length",
        )
    if not _ALLOWED.match(display):
        raise ValidationError(
            "Use letters, digits, spaces, '-', '_' and '.', starting with a letter or digit.",
            code="invalid",
        )
    if not name_key(display):
        raise ValidationError("A name needs at least one letter or digit.", code="invalid")
    return display


class NameReserved(ValidationError):
    """The name belonged to a model that was deleted or renamed: it stays reserved so that
    nothing resolving it (``name@alias``) reaches another model, until an administrator
    releases it. Answered like a taken name: a form error, 409 in the JSON API,
    RESOURCE_ALREADY_EXISTS in the MLflow API."""

    def __init__(self, name: str, why: str):
        event = "deleted" if why == "deleted" else "renamed"
        super().__init__(
            {
                "name": [
                    ValidationError(
                        f"The name {name!r} is reserved: a model of that name was {event}, and "
                        "its name is not given to another model. An administrator may release "
                        "it.",
                        code="name_reserved",
                    )
                ]
            }
        )
