"""A version's content digest: SHA-256 over a canonical manifest of what a reviewer judges.

The manifest is a JSON object (docs/content-digest.md describes every field). Its canonical
form is UTF-8 JSON with keys sorted, no spaces (separators "," and ":"), non-ASCII characters
as they are, numbers as Python's json module writes them (the shortest text that reads back as
the same double; whole floats keep ".0"). Lists have a fixed order (files by path, metrics by
name and split, and so on), so the same content always gives the same bytes.

The digest is ``"sha256:" + hexdigest`` of those bytes. It is recorded on the version when it
is submitted and on every review, and a decision is taken only on the digest the reviewer saw.
"""

import hashlib
import json

from models_app.models import ModelVersion

FORMAT = "registry-content-manifest/1"
PREFIX = "sha256:"


def manifest(version: ModelVersion) -> dict:
    """Everything a reviewer judges, in a fixed shape and order (7 queries). Lists are sorted
    here by code point, never by the database's collation, so both backends agree."""
    # Read, not taken from the instance's cache: a card written since it was loaded counts.
    cards = version._meta.get_field("card").related_model._default_manager
    card = cards.filter(version_id=version.pk).first()
    return {
        "format": FORMAT,
        "description": version.description,
        "files": sorted(
            ({"path": a.path, "size": a.size, "sha256": a.sha256} for a in version.artifacts.all()),
            key=lambda f: f["path"],
        ),
        "metrics": sorted(
            ({"name": m.name, "split": m.split, "value": m.value} for m in version.metrics.all()),
            key=lambda m: (m["name"], m["split"]),
        ),
        "params": sorted(
            ({"key": p.key, "value": p.value} for p in version.params.all()),
            key=lambda p: p["key"],
        ),
        "dependencies": {
            "framework": version.framework,
            "framework_version": version.framework_version,
            "python_version": version.python_version,
            "requirements": version.requirements,
            "packages": sorted(
                ({"name": d.name, "specifier": d.specifier} for d in version.dependencies.all()),
                key=lambda d: d["name"],
            ),
        },
        "datasets": sorted(
            (
                {
                    "name": link.dataset.name,
                    "role": link.role,
                    "uri": link.dataset.uri,
                    "digest": link.dataset.digest,
                }
                for link in version.dataset_links.select_related("dataset")
            ),
            key=lambda d: (d["name"], d["role"]),
        ),
        # Parents by their internal id: stable across renames, and naming nothing a viewer
        # of this version may not see (the API shows visible parents by name).
        "parents": sorted(
            (
                {"version_id": parent_id, "relation": relation}
                for parent_id, relation in version.parent_links.values_list("parent_id", "relation")
            ),
            key=lambda p: (p["version_id"] is None, p["version_id"] or 0, p["relation"]),
        ),
        "source": {
            "run": version.source_run,
            "repository": version.source_repository,
            "commit": version.source_commit,
        },
        "signature": version.signature,
        "card": {key: getattr(card, key) for key in CARD_FIELDS} if card is not None else None,
    }


CARD_FIELDS = (
    "intended_use",
    "out_of_scope",
    "training_data",
    "evaluation",
    "ethical_considerations",
    "caveats",
    "notes",
)


def canonical(data: dict) -> bytes:
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def digest_of_manifest(data: dict) -> str:
    return PREFIX + hashlib.sha256(canonical(data)).hexdigest()


def content_digest(version: ModelVersion) -> str:
    return digest_of_manifest(manifest(version))


def short(digest: str) -> str:
    """The first 12 hex digits, for tight spaces (the full digest is always one click away)."""
    return digest.removeprefix(PREFIX)[:12] if digest else ""
