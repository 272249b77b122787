"""Model cards: the document an auditor asks for. A version's card sections (written by its
authors while it is a draft) together with what the registry knows for a fact: metrics,
datasets, lineage, reviews and override reasons, and the files' checksums.

``card_document`` gathers it in a fixed number of queries; ``card_markdown`` writes it as a
Markdown file. Pages render the same document (templates/models_app/_card_document.html).

Reviews and aliases belong to the approvals app, which builds on this one: they are read
through their reverse relations on the version (``reviews``, ``aliases``), never imported.
Signatures too: the page passes them in, each with its standing and verification already
read (``approvals.selectors.version_signatures``).
"""

from dataclasses import dataclass, field

from django.db.models import Prefetch, prefetch_related_objects
from django.utils import timezone

from models_app.inspection.describe import format_label, inspection_summary
from models_app.lineage import LineageNode, walk_lineage
from models_app.models import (
    Artifact,
    CardTemplate,
    Metric,
    ModelCard,
    ModelVersion,
    VersionDataset,
    VersionParent,
)
from models_app.selectors import version_links


@dataclass
class Section:
    key: str
    label: str
    text: str
    required: bool


@dataclass
class CardDocument:
    version: ModelVersion
    card: ModelCard
    sections: list[Section]
    required: list[str]
    missing: list[str]  # labels of required sections left empty
    metrics: list[tuple[Metric, bool]]  # with "higher is better"
    datasets: list[VersionDataset]
    ancestors: list[list[LineageNode]]
    children: list[VersionParent]  # with is_visible
    reviews: list  # approvals.models.Review, oldest first
    artifacts: list[Artifact]
    aliases: list[str]
    signatures: list = field(default_factory=list)  # approvals.models.Signature, assessed
    generated_at: object = field(default_factory=timezone.now)

    @property
    def model(self):
        return self.version.model

    @property
    def overrides(self) -> list:
        return [r for r in self.reviews if r.override_reason]


def required_sections(model) -> list[str]:
    template = CardTemplate.objects.filter(model=model).first()
    return list(template.required_sections) if template else []


def card_document(version: ModelVersion, user, *, signatures: list = ()) -> CardDocument:
    """Everything the card shows, in a constant number of queries (plus one per generation of
    ancestors, at most LINEAGE_DEPTH). ``signatures``: the version's, from the approvals app."""
    prefetch_related_objects(
        [version],
        "metrics",
        "aliases",
        Prefetch("artifacts", Artifact.objects.order_by("path")),
        "reviews__reviewer",
        Prefetch("dataset_links", VersionDataset.objects.select_related("dataset")),
        Prefetch(
            "child_links",
            version_links(user, "child"),
        ),
        "created_by",
    )
    card = ModelCard.objects.filter(version=version).select_related(
        "updated_by"
    ).first() or ModelCard(version=version)
    required = required_sections(version.model)
    specs = dict(version.model.metric_specs.values_list("name", "higher_is_better"))
    return CardDocument(
        version=version,
        card=card,
        sections=[
            Section(key, label, text, key in required) for key, label, text in card.sections()
        ],
        required=required,
        missing=card.missing(required),
        metrics=[(m, version.model.higher_is_better(m.name, specs)) for m in version.metrics.all()],
        datasets=list(version.dataset_links.all()),
        ancestors=walk_lineage(version, user, up=True),
        children=list(version.child_links.all()),
        reviews=sorted(version.reviews.all(), key=lambda r: (r.created_at, r.pk)),
        artifacts=list(version.artifacts.all()),
        aliases=sorted(a.name for a in version.aliases.all()),
        signatures=list(signatures),
    )


# ---------------------------------------------------------------------------------------------
# Markdown export


def cell(value) -> str:
    """A value for a Markdown table cell: one line, pipes escaped."""
    text = "" if value is None else str(value)
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").split()) or "–"


def _inline(value) -> str:
    """User text on one line inside our own Markdown (a list item, a bold label)."""
    return " ".join(str(value or "").split())


def card_markdown(doc: CardDocument, *, site_url: str = "") -> str:
    v, model, lines = doc.version, doc.model, []
    add = lines.append
    add(f"# Model card: {_inline(model.name)} v{v.number}")
    add("")
    add("| | |")
    add("| --- | --- |")
    add(f"| Model | {cell(model.name)} |")
    add(f"| Version | {v.number} |")
    add(f"| Status | {cell(v.get_status_display())} |")
    add(
        f"| Registered | {v.created_at:%Y-%m-%d %H:%M} UTC by {cell(v.created_by.get_username())} |"
    )
    if v.decided_at:
        add(f"| Decided | {v.decided_at:%Y-%m-%d %H:%M} UTC |")
    add(f"| Framework | {cell(f'{v.framework} {v.framework_version}'.strip())} |")
    add(f"| Python | {cell(v.python_version)} |")
    add(f"| Aliases | {cell(', '.join(doc.aliases))} |")
    add(f"| Training run | {cell(v.source_run)} |")
    add(f"| Code | {cell(v.source_repository)} {cell(v.source_commit)} |")
    if site_url:
        add(f"| Page | {site_url}{v.get_absolute_url()} |")
    add("")
    if v.description.strip():
        add("## Description")
        add("")
        add(v.description.strip())
        add("")
    if doc.missing:
        add(f"> **Incomplete:** required sections missing: {', '.join(doc.missing)}.")
        add("")
    for section in doc.sections:
        add(f"## {section.label}")
        add("")
        add(section.text.strip() or "_Not written._")
        add("")
    if doc.card.notes.strip():
        add("## Notes")
        add("")
        add(doc.card.notes.strip())
        add("")

    add("## Metrics")
    add("")
    if doc.metrics:
        add("| Metric | Split | Value | Better |")
        add("| --- | --- | ---: | --- |")
        for m, higher in doc.metrics:
            better = "higher" if higher else "lower"
            add(f"| {cell(m.name)} | {cell(m.split)} | {m.value:.6g} | {better} |")
    else:
        add("_No metrics recorded._")
    add("")

    add("## Datasets")
    add("")
    if doc.datasets:
        add("| Dataset | Role | URI | Digest | Rows |")
        add("| --- | --- | --- | --- | ---: |")
        for link in doc.datasets:
            d = link.dataset
            rows = f"{d.row_count:,}" if d.row_count is not None else "–"
            add(
                f"| {cell(d.name)} | {cell(link.get_role_display())} | {cell(d.uri)} | "
                f"{cell(d.digest)} | {rows} |"
            )
    else:
        add("_No datasets recorded._")
    add("")

    add("## Lineage")
    add("")
    if doc.ancestors or doc.children:
        for depth, generation in enumerate(doc.ancestors, start=1):
            for node in generation:
                name = _version_name(node.version, node)
                add(f"- ancestor (generation {depth}): {name}: {_inline(node.note)}")
        for link in doc.children:
            name = _version_name(link.child if link.is_visible else None)
            add(f"- child: {name} ({link.get_relation_display().lower()} this version)")
    else:
        add("_No parents or children recorded._")
    add("")

    add("## Reviews and approvals")
    add("")
    if doc.reviews:
        for r in doc.reviews:
            when = f"{r.created_at:%Y-%m-%d %H:%M} UTC"
            state = " (discarded when the version was withdrawn)" if r.discarded_at else ""
            reason = f": {_inline(r.reason)}" if r.reason else ""
            add(
                f"- {when} **{_inline(r.reviewer.get_username())}** "
                f"{r.get_decision_display().lower()}{state}{reason}"
            )
            failed = [g.get("label", g.get("key", "")) for g in r.gates if not g.get("passed")]
            if r.override_reason:
                add(f"  - **Override of failing gates:** {_inline(r.override_reason)}")
            if failed:
                add(f"  - Gates failing at the time: {_inline('; '.join(failed))}")
    else:
        add("_No reviews yet._")
    add("")

    add("## Signatures")
    add("")
    if doc.signatures:
        if v.content_digest:
            add(f"Content digest of this version: `{v.content_digest}`")
            add("")
        add("| Signed by | Time (UTC) | Meaning | Decision | Reason | Standing | Audit event |")
        add("| --- | --- | --- | --- | --- | --- | --- |")
        for s in doc.signatures:
            decision = s.get_action_display() + (f" of {s.alias_name}" if s.alias_name else "")
            standing = s.standing if s.verifies else f"{s.standing}, DOES NOT VERIFY"
            add(
                f"| {cell(s.printed_name)} ({cell(s.signer_username)}) | "
                f"{s.signed_at:%Y-%m-%d %H:%M:%S} | {cell(s.meaning)} | {cell(decision)} | "
                f"{cell(s.reason)} | {standing} | #{s.audit_seq} `{s.audit_hash}` |"
            )
        add("")
        add(
            "_Each signature covers content digest "
            + ", ".join(sorted({f"`{s.content_digest}`" for s in doc.signatures}))
            + "; docs/signatures.md says how to check one._"
        )
    else:
        add("_No signatures._")
    add("")

    add("## Files")
    add("")
    if doc.artifacts:
        add("| Path | Size (bytes) | SHA-256 | Format | Inspection |")
        add("| --- | ---: | --- | --- | --- |")
        for a in doc.artifacts:
            note = "DANGEROUS: " + "; ".join(a.danger_findings) if a.dangerous else ""
            if not note and a.unsafe_reasons:
                note = "FAILS THE FILE GATE: " + "; ".join(a.unsafe_reasons[:3])
            if not note and a.executes_code:
                note = "executes code when loaded"
            add(
                f"| {cell(a.path)} | {a.size:,} | `{a.sha256}` | {cell(format_label(a))} | "
                f"{cell(note or inspection_summary(a))} |"
            )
    else:
        add("_No files._")
    add("")
    updated = (
        f"Card last edited {doc.card.updated_at:%Y-%m-%d %H:%M} UTC by "
        f"{_inline(doc.card.updated_by.get_username())}. "
        if doc.card.pk and doc.card.updated_by
        else ""
    )
    add(f"_{updated}Generated by the model registry on {doc.generated_at:%Y-%m-%d %H:%M} UTC._")
    return "\n".join(lines) + "\n"


def _version_name(version: ModelVersion | None, node: LineageNode | None = None) -> str:
    if node is not None and node.deleted:
        if not node.deleted_name:
            return "(deleted version)"
        return f"{_inline(node.deleted_name)} (deleted)"
    if version is None:
        return "(hidden version)"
    return f"{_inline(version.model.name)} v{version.number}"
