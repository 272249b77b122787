"""Datasets that versions are trained and evaluated on.

Datasets are registry-wide records matched by name. A name says which data was used only if
nobody can point it elsewhere: a version that names a known dataset with another URI or digest
is refused (never linked to whatever record holds the name), and only the dataset's owner
(who registered it, members of its team, superusers) may correct or complete its record."""

from dataclasses import dataclass, field

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from audit import chain
from core import sql
from core.errors import Conflict
from models_app.metadata import DatasetIn
from models_app.models import Dataset, ModelVersion, VersionDataset

# The fields that say which data a dataset is; a version naming the dataset must agree.
IDENTITY = {"uri": "URI", "digest": "digest"}


def dataset_create(
    *,
    actor,
    name: str,
    uri: str = "",
    digest: str = "",
    row_count: int | None = None,
    description: str = "",
    team: Group | None = None,
) -> Dataset:
    if team is not None:
        _check_team(actor, team)
    dataset = Dataset(
        name=name.strip(),
        uri=uri,
        digest=digest,
        row_count=row_count,
        description=description,
        created_by=actor,
        team=team,
    )
    dataset.full_clean()
    try:
        with transaction.atomic():
            dataset.save()
            chain.record(
                actor=actor,
                action="dataset.created",
                target=dataset,
                after={"name": dataset.name, "uri": uri, "digest": digest},
            )
    except IntegrityError:
        raise ValidationError({"name": ["A dataset with this name exists."]}) from None
    return dataset


def may_correct_dataset(user, dataset: Dataset, team_ids: set[int] | None = None) -> bool:
    """Whether ``user`` owns ``dataset``: registered it, is in its team, or is a superuser.
    ``team_ids``: the user's teams, when already read."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser or dataset.created_by_id == user.pk:
        return True
    if dataset.team_id is None:
        return False
    if team_ids is None:
        return user.groups.filter(pk=dataset.team_id).exists()
    return dataset.team_id in team_ids


def _owner_of(dataset: Dataset) -> str:
    owner = dataset.created_by.get_username()
    return f"{owner} or team {dataset.team.name}" if dataset.team_id else owner


def _check_team(actor, team: Group) -> None:
    if not actor.is_superuser and not actor.groups.filter(pk=team.pk).exists():
        raise ValidationError({"team": [f"You are not a member of team {team.name!r}."]})


def dataset_update(
    *,
    actor,
    dataset: Dataset,
    uri: str,
    digest: str,
    description: str,
    team: Group | None,
) -> Dataset:
    """Correct a dataset's record; its owner only (403 for others: datasets are seen by every
    signed-in user). A URI or digest that versions beyond draft were reviewed against stays
    (409), unless it was empty: completing a record changes no reviewed fact."""
    with transaction.atomic():
        locked = Dataset.objects.select_for_update().select_related("created_by").get(pk=dataset.pk)
        if not may_correct_dataset(actor, locked):
            raise PermissionDenied(
                f"Only the owner of dataset {locked.name} ({_owner_of(locked)}) or a superuser "
                "may change it."
            )
        if team is not None and team.pk != locked.team_id:
            _check_team(actor, team)
        wanted = {"uri": uri, "digest": digest, "description": description}
        before = {k: getattr(locked, k) for k in wanted} | {
            "team": locked.team.name if locked.team_id else None
        }
        rewritten = [k for k in IDENTITY if before[k] and wanted[k] != before[k]]
        if rewritten:
            reviewed = (
                ModelVersion.objects.filter(dataset_links__dataset=locked)
                .exclude(status=ModelVersion.Status.DRAFT)
                .order_by("model__name_key", "number")
                .values_list("model__name", "number")[:3]
            )
            reviewed = list(reviewed)
            if reviewed:
                named = ", ".join(f"{m} v{n}" for m, n in reviewed)
                raise Conflict(
                    f"The {' and '.join(IDENTITY[k] for k in rewritten)} of dataset "
                    f"{locked.name} cannot change: versions beyond draft ({named}) were "
                    "reviewed against the recorded value. Register the new data under another "
                    "name."
                )
        for k, v in wanted.items():
            setattr(locked, k, v)
        locked.team = team
        locked.full_clean(exclude=["name", "created_by"])
        after = {k: getattr(locked, k) for k in wanted} | {"team": team.name if team else None}
        changed = [k for k in after if after[k] != before[k]]
        if changed:
            locked.save(update_fields=[*wanted, "team"])
            chain.record(
                actor=actor,
                action="dataset.updated",
                target=locked,
                before={k: before[k] for k in changed},
                after={k: after[k] for k in changed},
            )
    return locked


# ---------------------------------------------------------------------------------------------
# The datasets a version names


@dataclass
class DatasetLinks:
    """A version's datasets resolved before its transaction: the records that exist, the new
    ones to register, and the empty fields the actor (their owner) fills in."""

    refs: list[DatasetIn]
    known: dict[str, Dataset] = field(default_factory=dict)
    new: list[Dataset] = field(default_factory=list)
    fills: list[tuple[Dataset, dict]] = field(default_factory=list)

    def rows(self, model_id: int, version: ModelVersion | None = None) -> list[VersionDataset]:
        """The links of a version of model ``model_id``, once every dataset has its primary
        key (each link keeps its version's model: VersionDataset.model)."""
        return [
            VersionDataset(
                version=version, model_id=model_id, dataset=self.known[d.name], role=d.role
            )
            for d in self.refs
        ]


def _mismatch(i: int, label: str, key: str, name: str, recorded: str, given: str) -> dict:
    return {
        f"datasets[{i}].{key}": [
            f"Dataset {name!r} is registered with {label} {recorded!r}, not {given!r}. Give the "
            f"recorded {label} (or none) to use this dataset, register your data under another "
            "name, or ask the dataset's owner to correct its record."
        ]
    }


def datasets_resolve(refs: list[DatasetIn], *, actor) -> DatasetLinks:
    """Check a version's dataset references against the registry, reading only (before the
    version's transaction): a known name must come with its recorded URI and digest (or none);
    an empty field of a known record may be filled in by its owner only. Refused: 400 naming
    the field and the dataset."""
    links = DatasetLinks(refs=list(refs))
    if not refs:
        return links
    names = sorted({d.name for d in refs})
    links.known = {
        d.name: d
        for d in Dataset.objects.filter(name__in=names).select_related("created_by", "team")
    }
    errors: dict[str, list[str]] = {}
    asked: dict[str, dict] = {}  # name: what the version gives for each field (the first)
    team_ids = None
    for i, ref in enumerate(refs):
        given = asked.setdefault(ref.name, {"uri": "", "digest": ""})
        for key, label in IDENTITY.items():
            value = getattr(ref, key)
            if value and given[key] and value != given[key]:
                errors |= {
                    f"datasets[{i}].{key}": [
                        f"Dataset {ref.name!r} is given two {label}s, {given[key]!r} and "
                        f"{value!r}: one dataset has one {label}."
                    ]
                }
            given[key] = given[key] or value
        record = links.known.get(ref.name)
        if record is None:
            continue
        fill = {}
        for key, label in IDENTITY.items():
            value, recorded = getattr(ref, key), getattr(record, key)
            if not value or value == recorded:
                continue
            if recorded:
                errors |= _mismatch(i, label, key, ref.name, recorded, value)
                continue
            if team_ids is None and record.team_id is not None:
                team_ids = set(actor.groups.values_list("pk", flat=True))
            if may_correct_dataset(actor, record, team_ids or set()):
                fill[key] = value
            else:
                errors |= {
                    f"datasets[{i}].{key}": [
                        f"Dataset {ref.name!r} has no {label} recorded; only its owner "
                        f"({_owner_of(record)}) may add one. Leave the {label} empty to use "
                        "the dataset as it is, or register your data under another name."
                    ]
                }
        if fill and not any(r is record for r, _ in links.fills):
            links.fills.append((record, fill))
    if errors:
        raise ValidationError(errors)
    for name in names:
        if name not in links.known:
            first = next(d for d in refs if d.name == name)
            links.new.append(
                Dataset(
                    name=name,
                    uri=asked[name]["uri"],
                    digest=asked[name]["digest"],
                    row_count=first.row_count,
                    description=first.description,
                    created_by=actor,
                )
            )
    return links


def datasets_write(links: DatasetLinks, *, actor) -> None:
    """Inside the version's transaction, before its number is taken: register the new
    datasets (one INSERT) and fill in what their owner completes. A name registered
    meanwhile by someone else is checked again like one that was there before."""
    if links.new:
        Dataset.objects.bulk_create(links.new, ignore_conflicts=True)
        created = Dataset.objects.filter(name__in=[d.name for d in links.new]).select_related(
            "created_by", "team"
        )
        for record in created:
            links.known[record.name] = record
        for d in links.new:
            record = links.known[d.name]
            if any(getattr(d, k) not in ("", getattr(record, k)) for k in IDENTITY):
                raise ValidationError(
                    {
                        "datasets": [
                            f"Dataset {d.name!r} was registered meanwhile with other values. "
                            "Send the version again to check against them."
                        ]
                    }
                )
    for record, fill in links.fills:
        empty = dict.fromkeys(fill, "")
        if Dataset.objects.filter(pk=record.pk, **empty).update(**fill) != 1:
            raise ValidationError(
                {"datasets": [f"Dataset {record.name!r} was changed meanwhile; send again."]}
            )
        chain.record(
            actor=actor,
            action="dataset.updated",
            target=record,
            before=empty,
            after=fill,
        )
        for key, value in fill.items():
            setattr(record, key, value)


def links_insert(links: DatasetLinks, version: ModelVersion) -> None:
    """The version's dataset links in one INSERT."""
    sql.insert(links.rows(version.model_id, version))
