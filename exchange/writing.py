"""Writing an import: files first, then every row in one transaction.

``store_files`` stores each file of the plan under a fresh, server-made key (and removes what
it stored if one fails). ``write_import`` then creates, inside the caller's transaction: users
(missing ones without a usable password, never staff), teams, datasets, models with their
settings and grants, versions with everything they carry, files, cards, reviews, comments,
aliases with their history, the imported audit history (verbatim, one RegistryImport batch),
and one ``registry.imported`` event in this registry's own chain. Exported timestamps are kept.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from guardian.shortcuts import assign_perm

from approvals.models import (
    Alias,
    AliasAssignment,
    Comment,
    MetricGate,
    Review,
    ReviewPolicy,
    Signature,
)
from audit import chain
from exchange.archive import ExchangeError
from exchange.models import ImportedAuditEvent, RegistryImport
from exchange.planning import Plan
from exchange.reading import read_jsonl
from exchange.records import AUDIT_FIELDS, CARD_FIELDS
from models_app import storage, summary
from models_app.access import Role
from models_app.models import (
    Artifact,
    CardTemplate,
    Dataset,
    Dependency,
    Metric,
    MetricSpec,
    ModelCard,
    ModelTag,
    ModelVersion,
    Param,
    RegisteredModel,
    VersionDataset,
    VersionParent,
    VersionTag,
)
from models_app.names import name_key

AUDIT_BATCH = 2000


@dataclass
class ImportReport:
    """What an import created; ``write_import`` fills it in."""

    archive_sha256: str
    models: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    versions: int = 0
    artifacts: int = 0
    artifact_bytes: int = 0
    audit_events: int = 0
    audit_head_hash: str = ""
    users_created: list[str] = field(default_factory=list)
    batch_id: int | None = None


def store_files(plan: Plan) -> list[str]:
    """Store every artifact under a fresh key (files first, rows after; removed on failure)."""
    keys: list[str] = []
    try:
        for item in plan.artifacts:
            record = item.record
            key = storage.new_storage_key(0)  # server-made; the models have no ids yet
            keys.append(key)
            item.stored_at = timezone.now()
            storage.store(
                key,
                storage.IncomingFile(
                    record["path"],
                    item.local,
                    record["size"],
                    record["sha256"],
                    record["content_type"],
                    owned=True,
                ),  # fmt: skip
            )
            item.storage_key = key
    except BaseException:
        storage.delete_quietly(keys)
        raise
    return keys


def write_import(
    plan: Plan, report: ImportReport, *, actor, archive_sha: str, docs: dict[str, str]
) -> None:
    """Create every row of the plan and fill in ``report``. Run it in one transaction: a late
    conflict (an alias naming a version the archive does not hold) raises ExchangeError after
    rows were written."""
    users, groups = _people(plan, report)
    datasets = _datasets(plan, users, groups)
    models = _models(plan, users, groups)
    for model, data in models.values():
        _model_settings(model, data, users, groups)
    rows, versions = _versions(plan, models, users)
    _version_details(plan, rows, versions, datasets)
    # The models' summaries, framework and metric counts, from the rows just written.
    summary.recompute(model.pk for model, _ in models.values())
    _artifacts(plan, versions)
    _cards(rows, users)
    signed = _reviews(rows, users)
    _comments(rows, users)
    for model, data in models.values():
        signed += _aliases(model, data, versions, users)
    batch = _imported_history(
        plan, models, actor=actor, archive_sha=archive_sha, audit_path=docs["audit"]
    )
    _signatures(signed, users, batch)

    audit = plan.contents.audit_summary
    report.models = [data["name"] for _, data in models.values()]
    report.skipped = plan.skipped
    report.versions = len(rows)
    report.artifacts = len(plan.artifacts)
    report.artifact_bytes = sum(item.record["size"] for item in plan.artifacts)
    report.audit_events = audit.events
    report.audit_head_hash = audit.head_hash
    report.batch_id = batch.pk
    chain.record(
        actor=actor,
        action="registry.imported",
        target=batch,
        after={
            "archive_sha256": archive_sha,
            "models": report.models,
            "skipped": report.skipped,
            "versions": report.versions,
            "files": report.artifacts,
            "users_created": report.users_created,
            "audit_scope": batch.audit_scope,
            "audit_events": audit.events,
            "audit_head_hash": audit.head_hash,
        },
    )


def _people(plan: Plan, report: ImportReport) -> tuple[dict, dict]:
    """Users by username and teams by name, the missing ones created."""
    User = get_user_model()
    users = {
        u.get_username(): u for u in User.objects.filter(username__in=list(plan.contents.users))
    }
    for name, data in plan.contents.users.items():
        if name not in users:
            user = User(username=name, **data)
            user.set_unusable_password()
            user.save()
            users[name] = user
            report.users_created.append(name)
    groups = {g.name: g for g in Group.objects.filter(name__in=plan.contents.groups)}
    for name in plan.contents.groups:
        if name not in groups:
            groups[name] = Group.objects.create(name=name)
    return users, groups


def _datasets(plan: Plan, users: dict, groups: dict) -> dict[str, Dataset]:
    datasets = {d.name: d for d in Dataset.objects.filter(name__in=list(plan.contents.datasets))}
    new_datasets = []
    for name, data in plan.contents.datasets.items():
        if name not in datasets:
            d = Dataset(
                name=name, uri=data["uri"], digest=data["digest"], row_count=data["row_count"],
                description=data["description"], created_by=users[data["created_by"]],
                team=groups.get(data["team"]) if data["team"] else None,
            )  # fmt: skip
            new_datasets.append((d, data["created_at"]))
            datasets[name] = d
    _create_keeping_times(Dataset, new_datasets, ["created_at"])
    return datasets


def _models(plan: Plan, users: dict, groups: dict) -> dict[str, tuple[RegisteredModel, dict]]:
    models = {}
    for data in plan.models:
        model = RegisteredModel(
            name=data["name"], name_key=data["key"], slug=data["key"],
            description=data["description"], owner=users[data["owner"]],
            team=groups.get(data["team"]) if data["team"] else None, task=data["task"],
            visibility=data["visibility"], next_version_number=data["next_version_number"],
        )  # fmt: skip
        model.save()
        model.created_at, model.updated_at = data["created_at"], data["updated_at"]
        models[data["name"]] = (model, data)
    RegisteredModel.objects.bulk_update(
        [m for m, _ in models.values()], ["created_at", "updated_at"]
    )
    return models


def _model_settings(model: RegisteredModel, data: dict, users: dict, groups: dict) -> None:
    """Tags, metric directions, review policy and gates, card template, grants."""
    ModelTag.objects.bulk_create(
        ModelTag(model=model, key=k, value=v) for k, v in data["tags"].items()
    )
    MetricSpec.objects.bulk_create(
        MetricSpec(model=model, name=k, higher_is_better=v)
        for k, v in data["metric_directions"].items()
    )
    if data["policy"]:
        p = data["policy"]
        policy = ReviewPolicy.objects.create(
            model=model, **{k: v for k, v in p.items() if k not in ("gates", "updated_at")}
        )
        MetricGate.objects.bulk_create(MetricGate(policy=policy, **g) for g in p["gates"])
        policy.updated_at = p["updated_at"]
        ReviewPolicy.objects.bulk_update([policy], ["updated_at"])
    if data["card_template"]:
        t = data["card_template"]
        template = CardTemplate.objects.create(
            model=model, required_sections=t["required_sections"]
        )
        template.updated_at = t["updated_at"]
        CardTemplate.objects.bulk_update([template], ["updated_at"])
    for who, roles in data["grants"]["users"].items():
        for role in roles:
            assign_perm(Role(role).perm, users[who], model)
    for who, roles in data["grants"]["groups"].items():
        group = groups.get(who) or Group.objects.get_or_create(name=who)[0]
        for role in roles:
            assign_perm(Role(role).perm, group, model)


def _versions(plan: Plan, models: dict, users: dict) -> tuple[list, dict]:
    """The versions as ``(row, record)`` pairs, and by ``(model name, number)``."""
    versions = {}
    rows = []
    for v in plan.versions:
        model = models[v["model"]][0]
        version = ModelVersion(
            model=model, number=v["number"], status=v["status"], description=v["description"],
            created_by=users[v["created_by"]], framework=v["framework"],
            framework_version=v["framework_version"], python_version=v["python_version"],
            requirements=v["requirements"], signature=v["signature"],
            submitted_by=users[v["submitted_by"]] if v["submitted_by"] else None,
            submitted_at=v["submitted_at"], decided_at=v["decided_at"],
            review_round=v["review_round"], revalidation_marked_at=v["revalidation_marked_at"],
            source_run=v["source_run"], source_model=v["source_model"],
            source_repository=v["source_repository"], source_commit=v["source_commit"],
            content_digest=v["content_digest"],
        )  # fmt: skip
        rows.append((version, v))
    ModelVersion.objects.bulk_create([version for version, _ in rows])
    for version, v in rows:
        version.created_at, version.updated_at = v["created_at"], v["updated_at"]
        versions[(v["model"], v["number"])] = version
    ModelVersion.objects.bulk_update([version for version, _ in rows], ["created_at", "updated_at"])
    return rows, versions


def _version_details(plan: Plan, rows: list, versions: dict, datasets: dict) -> None:
    """Metrics, parameters, tags, dependencies, datasets and parents of each version."""
    Metric.objects.bulk_create(
        Metric(version=version, name=n, split=s, value=x, step=step)
        for version, v in rows for n, s, x, step in v["metrics"]
    )  # fmt: skip
    Param.objects.bulk_create(
        Param(version=version, key=k, value=x)
        for version, v in rows for k, x in v["params"].items()
    )  # fmt: skip
    VersionTag.objects.bulk_create(
        VersionTag(version=version, key=k, value=x)
        for version, v in rows for k, x in v["tags"].items()
    )  # fmt: skip
    Dependency.objects.bulk_create(
        Dependency(version=version, name=n, specifier=s)
        for version, v in rows for n, s in v["dependencies"]
    )  # fmt: skip
    VersionDataset.objects.bulk_create(
        VersionDataset(
            version=version, model_id=version.model_id, dataset=datasets[name], role=role
        )
        for version, v in rows for name, role in v["datasets"]
    )  # fmt: skip
    parents = {**plan.external_parents, **versions}
    VersionParent.objects.bulk_create(
        VersionParent(
            child=version,
            parent_model_name=m,
            parent_number=n,
            parent_in_child_model=name_key(m) == name_key(v["model"]),
            relation=relation,
        )
        if deleted
        else VersionParent.linking(version, parents[(m, n)], relation)
        for version, v in rows for m, n, relation, deleted in v["parents"]
    )  # fmt: skip


def _artifacts(plan: Plan, versions: dict) -> None:
    _create_keeping_times(
        Artifact,
        [
            (
                Artifact(
                    version=versions[item.version_key],
                    storage_key=item.storage_key,
                    # Archives do not say who uploaded a file: its version's creator did.
                    uploaded_by_id=versions[item.version_key].created_by_id,
                    stored_at=item.stored_at,
                    **{
                        k: item.record[k]
                        for k in (
                            "path",
                            "size",
                            "sha256",
                            "content_type",
                            "format",
                            "inspection",
                            "findings",
                            "dangerous",
                        )
                    },
                ),  # fmt: skip
                item.record["created_at"],
            )
            for item in plan.artifacts
        ],
        ["created_at"],
    )


def _cards(rows: list, users: dict) -> None:
    cards = []
    for version, v in rows:
        if v["card"]:
            c = v["card"]
            card = ModelCard(
                version=version,
                updated_by=users[c["updated_by"]] if c["updated_by"] else None,
                **{key: c[key] for key in CARD_FIELDS},
            )
            cards.append((card, c["updated_at"]))
    _create_keeping_times(ModelCard, cards, ["updated_at"])


def _reviews(rows: list, users: dict) -> list[tuple]:
    """The reviews; returns ``(review, its signature record)`` for the signed ones."""
    records = [(version, r) for version, v in rows for r in v["reviews"]]
    made = _create_keeping_times(
        Review,
        [
            (
                Review(
                    version=version,
                    reviewer=users[r["reviewer"]],
                    decision=r["decision"],
                    reason=r["reason"],
                    override_reason=r["override_reason"],
                    gates=r["gates"],
                    round=r["round"],
                    discarded_at=r["discarded_at"],
                    content_digest=r["content_digest"],
                ),  # fmt: skip
                r["created_at"],
            )
            for version, r in records
        ],
        ["created_at"],
    )
    return [(row, r["signature"]) for row, (_, r) in zip(made, records, strict=True)
            if r["signature"] is not None]  # fmt: skip


def _comments(rows: list, users: dict) -> None:
    comments = []
    for version, v in rows:
        made = {}
        for c in sorted(v["comments"], key=lambda c: c["id"]):
            comment = Comment.objects.create(
                version=version, author=users[c["author"]], metric=c["metric"], body=c["body"],
                parent=made.get(c["parent"]),
            )  # fmt: skip
            comment.created_at = c["created_at"]
            made[c["id"]] = comment
            comments.append(comment)
    Comment.objects.bulk_update(comments, ["created_at"])


def _aliases(model: RegisteredModel, data: dict, versions: dict, users: dict) -> list[tuple]:
    """The model's aliases and their history (which may name versions no longer there);
    returns ``(alias move, its signature record)`` for the signed moves."""
    by_number = {v.number: v for (name, _), v in versions.items() if name == data["name"]}
    aliases = []
    for a in data["aliases"]:
        if a["version"] not in by_number:
            raise ExchangeError(
                f"{data['name']}@{a['name']} points at version {a['version']}, which is "
                "not in the archive. Nothing was imported."
            )
        aliases.append(
            (
                Alias(
                    model=model,
                    name=a["name"],
                    version=by_number[a["version"]],
                    protected=a["protected"],
                ),
                a["updated_at"],
            )  # fmt: skip
        )
    _create_keeping_times(Alias, aliases, ["updated_at"])
    made = AliasAssignment.objects.bulk_create(
        AliasAssignment(
            model=model,
            alias_name=h["alias_name"],
            version=by_number.get(h["version_number"]),
            version_number=h["version_number"],
            previous_version=by_number.get(h["previous_number"]),
            previous_number=h["previous_number"],
            kind=h["kind"],
            note=h["note"],
            assigned_by=users[h["assigned_by"]],
            assigned_at=h["assigned_at"],
        )  # fmt: skip
        for h in data["alias_history"]
    )
    return [
        (row, h["signature"])
        for row, h in zip(made, data["alias_history"], strict=True)
        if h["signature"] is not None
    ]


def _imported_history(
    plan: Plan, models: dict, *, actor, archive_sha: str, audit_path: str
) -> RegistryImport:
    """The archive's audit events, verbatim, as one batch."""
    summary = plan.contents.audit_summary
    batch = RegistryImport.objects.create(
        archive_sha256=archive_sha,
        imported_at=timezone.now(),
        imported_by=actor.get_username() if actor is not None else "",
        model_names=[data["name"] for _, data in models.values()],
        audit_scope=plan.contents.manifest["scope"],
        audit_events=summary.events,
        audit_head_hash=summary.head_hash,
    )
    new_model = {data["export_id"]: model.pk for model, data in models.values()}
    pending = []
    for r in read_jsonl(audit_path, "audit.jsonl"):
        record = {name: r.data.get(name) for name in AUDIT_FIELDS}
        record["created_at"] = datetime.fromisoformat(record["created_at"])
        pending.append(
            ImportedAuditEvent(
                batch=batch, registered_model_id=new_model.get(record["model_id"]), **record
            )
        )
        if len(pending) >= AUDIT_BATCH:
            ImportedAuditEvent.objects.bulk_create(pending)
            pending = []
    ImportedAuditEvent.objects.bulk_create(pending)
    return batch


def _signatures(signed: list[tuple], users: dict, batch: RegistryImport) -> None:
    """The signatures, verbatim (reading.Contents checked each against the archive's audit
    history and its version's content digest), naming their events in the imported batch.
    Written in the order of the audit chain, so that signatures made within one database
    transaction (the same ``signed_at``) keep their order after an import as they had before."""
    signed = sorted(signed, key=lambda pair: pair[1]["audit_seq"])
    Signature.objects.bulk_create(
        Signature(
            version=_signed_version(decision),
            model_name=s["model_name"],
            version_number=s["version_number"],
            action=s["action"],
            review=decision if isinstance(decision, Review) else None,
            alias_assignment=decision if isinstance(decision, AliasAssignment) else None,
            alias_name=s["alias_name"],
            signer=users[s["signer"]],
            signer_username=s["signer_username"],
            printed_name=s["printed_name"],
            signed_at=s["signed_at"],
            meaning=s["meaning"],
            reason=s["reason"],
            content_digest=s["content_digest"],
            audit_seq=s["audit_seq"],
            audit_hash=s["audit_hash"],
            imported_batch_id=batch.pk,
        )
        for decision, s in signed
    )


def _signed_version(decision):
    """The version a decision's signature is for: for an alias's removal, the one it left."""
    if isinstance(decision, AliasAssignment) and decision.kind == AliasAssignment.Kind.REMOVE:
        return decision.previous_version
    return decision.version


def _create_keeping_times(model_class, pairs: list, fields: list[str]) -> list:
    """bulk_create ``(row, when)`` pairs, then put back the exported timestamps, which
    auto_now/auto_now_add overwrote (bulk_update does not touch them)."""
    if not pairs:
        return []
    rows = model_class.objects.bulk_create([row for row, _ in pairs])
    for row, (_, when) in zip(rows, pairs, strict=True):
        for name in fields:
            setattr(row, name, when)
    model_class.objects.bulk_update(rows, fields)
    return rows
