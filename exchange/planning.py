"""Planning an import: what of a read archive will be created here, decided before any file
is stored or any row written.

A model whose name is taken here, or reserved here (a deleted or renamed model's name,
models_app.models.ReservedName), is a conflict: ``on_conflict`` "fail" refuses the import,
"skip" keeps the existing model and imports the others. Every file is inspected again (the
archive's inspection results are not trusted). A dataset registered here without the URI or
digest the archive gives it, or with another, is a conflict; a parent version outside the
archive is looked up here by name and number (``external_parents``), and one that is in
neither refuses the import.
"""

from exchange.archive import ExchangeError
from exchange.reading import ArchiveArtifact, Contents
from models_app import inspection
from models_app.models import Dataset, ModelVersion, RegisteredModel, ReservedName
from models_app.names import name_key
from models_app.services.datasets import IDENTITY


class Plan:
    """The archive's contents and what of them will be imported."""

    def __init__(self, contents: Contents, on_conflict: str):
        self.contents = contents
        self.on_conflict = on_conflict
        self.models: list[dict] = []
        self.skipped: list[str] = []
        self.versions: list[dict] = []
        self.artifacts: list[ArchiveArtifact] = []
        self.external_parents: dict[tuple[str, int], ModelVersion] = {}

    @classmethod
    def choose(cls, contents: Contents, on_conflict: str) -> "Plan":
        """The models to import (all, or with "skip" those whose name is free here), their
        versions and their files."""
        plan = cls(contents, on_conflict)
        existing = set(
            RegisteredModel.objects.filter(
                name_key__in=[m["key"] for m in contents.models]
            ).values_list("name_key", flat=True)
        )
        reserved = set(
            ReservedName.objects.filter(
                name_key__in=[m["key"] for m in contents.models]
            ).values_list("name_key", flat=True)
        )
        chosen = []
        for model in contents.models:
            if model["key"] in reserved and model["key"] not in existing:
                if on_conflict == "fail":
                    raise ExchangeError(
                        f"The name {model['name']!r} is reserved in this registry (a model of "
                        "that name was deleted or renamed; an administrator may release it). "
                        "Nothing was imported; use --on-conflict skip to import the others."
                    )
                plan.skipped.append(model["name"])
                continue
            if model["key"] in existing:
                if on_conflict == "fail":
                    raise ExchangeError(
                        f"A model named {model['name']!r} exists in this registry. Nothing was "
                        "imported; use --on-conflict skip to keep the existing one and import "
                        "the others."
                    )
                plan.skipped.append(model["name"])
                continue
            chosen.append(model)
        plan.models = chosen
        plan.versions = [v for m in chosen for v in m.get("versions", [])]
        plan.artifacts = [a for v in plan.versions for a in v["artifacts"]]
        return plan

    def inspect_again(self) -> None:
        """The archive's inspection results are not trusted: every file is read again here
        (never executed), exactly as on upload."""
        by_version: dict[tuple[str, int], list[ArchiveArtifact]] = {}
        for item in self.artifacts:
            by_version.setdefault(item.version_key, []).append(item)
        for items in by_version.values():
            results = inspection.inspect_all(
                (
                    item.record["path"],
                    lambda seconds, item=item: inspection.inspect_file(
                        item.local, item.record["path"], seconds=seconds
                    ),
                )
                for item in items
            )
            inspection.add_version_context(results, results)
            for item in items:
                item.record.update(results[item.record["path"]].as_artifact_fields())

    def check_against_registry(self) -> None:
        """Conflicts with what this registry holds, found before anything is written."""
        for dataset in Dataset.objects.filter(name__in=list(self.contents.datasets)):
            for key, label in IDENTITY.items():
                ours, here = self.contents.datasets[dataset.name][key], getattr(dataset, key)
                if ours and ours != here:
                    raise ExchangeError(
                        f"Dataset {dataset.name!r} is registered here with {label} "
                        f"{here or '(none)'}; the archive has {ours or '(none)'}. Nothing was "
                        "imported: correct one of the two records (its owner may, on the "
                        "dataset's page) or rename the dataset in the archive."
                    )
        imported = {(v["model"], v["number"]) for v in self.versions}
        for version in self.versions:
            for model, number, _relation, deleted in version["parents"]:
                if (
                    deleted
                    or (model, number) in imported
                    or (model, number) in self.external_parents
                ):
                    continue
                found = (
                    ModelVersion.objects.filter(model__name_key=name_key(model), number=number)
                    .select_related("model")
                    .first()
                )
                if found is None:
                    raise ExchangeError(
                        f"{version['model']} v{version['number']} was made from {model} "
                        f"v{number}, which is neither imported nor in this registry. Nothing "
                        "was imported."
                    )
                self.external_parents[(model, number)] = found
