"""Template filters shared by the registry's pages: {% load registry %}."""

from django import template
from django.template.defaultfilters import filesizeformat

from models_app import digest
from models_app.inspection.describe import format_label, inspection_summary
from models_app.markdown import render_markdown

register = template.Library()


@register.filter
def markdown(text: str):
    """User Markdown → sanitised HTML (allowlist; scripts and javascript: links removed)."""
    return render_markdown(text)


@register.filter
def short_sha(value: str, length: int = 12) -> str:
    return (value or "")[:length]


@register.filter
def short_digest(value: str) -> str:
    """sha256:3f2a… → "sha256:3f2a9c01b7de" (the full digest goes in a title or beside it)."""
    return f"{digest.PREFIX}{digest.short(value)}" if value else ""


@register.filter
def filesize(value) -> str:
    return filesizeformat(value)


@register.filter
def metric(value) -> str:
    """Metrics at a readable precision: 4 significant digits, no exponent for usual ranges."""
    if value is None:
        return "–"
    value = float(value)
    if value == 0 or 1e-4 <= abs(value) < 1e6:
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.1f}"
    return f"{value:.3e}"


@register.inclusion_tag("models_app/_status_pill.html")
def status_pill(version):
    return {"status": version.status, "label": version.get_status_display()}


register.filter(format_label)
register.filter(inspection_summary)
