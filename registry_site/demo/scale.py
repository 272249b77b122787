"""A registry at the size of a large organisation, loaded fast (``manage.py seed_scale``).

Every row is one the services could have written: numbered versions below each model's next
number, statuses reached through the workflow (each with the audit events ``check_invariants``
looks for, chained with the same hashes ``audit.chain.record`` computes), content digests
computed from the manifest each version would give (``models_app.digest``), reviews by users
holding the review role and not contributors, protected aliases on approved versions with
their history and ``alias.moved`` events, and grants stored as the app stores roles (one
guardian row per implied permission, on the model's own foreign-key tables).

Rows are generated in Python in time order (so created dates, audit sequence numbers and
version numbers rise together) and written in bulk: ``COPY`` on PostgreSQL (psycopg 3),
``executemany`` in batches elsewhere. Ids are given here and the sequences are moved past
them at the end. The whole load is one transaction: a failed load leaves nothing behind.

The versions have no files (no artifact rows): a million stored objects would measure the disk,
not the pages, and ``check_invariants`` would have to hash them all. So each model's review
policy (set as its owner would, with its ``policy.updated`` event) does not ask for files.

Who sees what (personas):

- ``scale-admin``: superuser, sees everything;
- ``scale-reviewer``: member of the team ``scale-risk``, which holds the review role on about
  6 % of the models; about 1 % more are internal (viewable by every signed-in user);
- ``scale-user-NNNN``: authors; each belongs to one team ``scale-team-NN``, which holds the
  edit role on its models; each model's owner holds manage.

Personas sign in with ``DEMO_PASSWORD``; the authors' passwords are unusable.
"""

import hashlib
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission, User
from django.core.management.color import no_style
from django.db import connection, models, transaction

from approvals.models import Alias, AliasAssignment, Review, ReviewPolicy
from audit import chain
from audit.models import AuditChainHead, AuditEvent
from models_app import summary
from models_app.access import Role
from models_app.digest import FORMAT as MANIFEST_FORMAT
from models_app.digest import digest_of_manifest
from models_app.models import (
    Dataset,
    Metric,
    ModelTag,
    ModelVersion,
    Param,
    RegisteredModel,
    RegisteredModelGroupObjectPermission,
    RegisteredModelUserObjectPermission,
    VersionContributor,
    VersionDataset,
)
from models_app.names import name_key
from registry_site.demo.users import DEMO_PASSWORD

ADMIN = "scale-admin"
REVIEWER = "scale-reviewer"
RISK_TEAM = "scale-risk"
USER_PREFIX = "scale-user-"
TEAM_PREFIX = "scale-team-"
MODEL_PREFIX = "scale-model-"
BIG_MODEL = "scale-big-model"
HOLDOUT = "scale-holdout"  # the test set of one version in 200, across all models
BIG_TRAIN = "scale-big-train"  # the big model's training set (every one of its versions)
SPAN = timedelta(days=730)  # the history goes back two years

S = ModelVersion.Status
TASKS = [t for t, _ in RegisteredModel.Task.choices]
FRAMEWORKS = [("scikit-learn", "1.5.2"), ("xgboost", "2.1.1"), ("pytorch", "2.4.1")]
POLICY = {
    "required_approvals": 1, "require_description": True, "require_training_dataset": True,
    "require_metrics": True, "verify_artifacts": False, "gates": [],
}  # fmt: skip
DOMAINS = ["fraud", "credit", "marketing", "search", "ops", "pricing", "support", "risk"]


@dataclass
class Sizes:
    models: int
    versions: int
    big_model: int = 0

    @property
    def teams(self) -> int:
        return max(3, self.models // 200)

    @property
    def users(self) -> int:
        return max(3 * self.teams, self.models // 50)

    @property
    def datasets(self) -> int:
        return max(5, self.models // 20)

    @property
    def total_versions(self) -> int:
        return self.models * self.versions + self.big_model


@dataclass
class Result:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    big_model: str | None = None
    holdout_dataset_id: int | None = None


class AlreadySeeded(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Writing rows in bulk


class _Table:
    """Rows of one model, given as tuples of ``fields``; every other concrete field gets its
    default (so columns added later with a default need no change here)."""

    def __init__(self, model: type[models.Model], fields: Sequence[str]):
        self.model = model
        given = [model._meta.get_field(f) for f in fields]
        rest = [f for f in model._meta.concrete_fields if f not in given]
        self.columns = [f.column for f in given + rest]
        self.tail = tuple(_default(f) for f in rest)
        self.rows: list[tuple] = []
        self.written = 0

    def add(self, row: tuple) -> None:
        self.rows.append(row)


def _default(f: models.Field):
    value = f.get_default()
    if isinstance(f, models.JSONField):
        return None if value is None and f.null else json.dumps(value)
    return value


class _Writer:
    def __init__(self):
        self.vendor = connection.vendor
        self.ops = connection.ops

    def flush(self, table: _Table) -> None:
        if not table.rows:
            return
        name = connection.ops.quote_name(table.model._meta.db_table)
        cols = ", ".join(connection.ops.quote_name(c) for c in table.columns)
        tail = table.tail
        with connection.cursor() as cursor:
            if self.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {name} ({cols}) FROM STDIN") as copy:
                    for row in table.rows:
                        copy.write_row(row + tail)
            else:
                marks = ", ".join(["%s"] * len(table.columns))
                sql = f"INSERT INTO {name} ({cols}) VALUES ({marks})"  # noqa: S608 (metadata)
                adapt = self.ops.adapt_datetimefield_value
                rows = [
                    tuple(adapt(v) if isinstance(v, datetime) else v for v in row + tail)
                    for row in table.rows
                ]
                for start in range(0, len(rows), 2000):
                    cursor.executemany(sql, rows[start : start + 2000])
        table.written += len(table.rows)
        table.rows = []


def _next_id(model: type[models.Model]) -> int:
    return (model.objects.aggregate(m=models.Max("pk"))["m"] or 0) + 1


class _Ids:
    def __init__(self, model):
        self.next = _next_id(model)

    def take(self) -> int:
        value = self.next
        self.next += 1
        return value


# ---------------------------------------------------------------------------------------------
# The audit chain, appended in bulk


class _Chain:
    """Appends events after the chain head (locked for the whole load), hashing each as
    ``audit.chain.compute_hash`` does."""

    def __init__(self, table: _Table):
        self.table = table
        head = AuditChainHead.objects.select_for_update().filter(pk=chain.HEAD_ID).first()
        if head is None:
            last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
            seq, prev = last or (0, chain.GENESIS_HASH)
            head = AuditChainHead.objects.create(pk=chain.HEAD_ID, seq=seq, hash=prev)
            head = AuditChainHead.objects.select_for_update().get(pk=chain.HEAD_ID)
        self.seq, self.prev = head.seq, head.hash
        self.ids = _Ids(AuditEvent)

    def add(self, *, at, actor_id, actor_name, action, model_id, target_type="modelversion",
            target_id, target_label, before=None, after=None, reason=""):  # fmt: skip
        self.seq += 1
        body = {
            "seq": self.seq,
            "created_at": at.isoformat(),
            "actor_id": actor_id,
            "actor_username": actor_name,
            "action": action,
            "model_id": model_id,
            "target_type": target_type,
            "target_id": str(target_id),
            "target_label": target_label,
            "before": before,
            "after": after,
            "reason": reason,
            "ip_address": None,
            "prev_hash": self.prev,
        }
        digest = hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        ).hexdigest()
        self.table.add(
            (
                self.ids.take(), self.seq, at, actor_id, actor_name, action, model_id,
                target_type, str(target_id), target_label,
                None if before is None else json.dumps(before),
                None if after is None else json.dumps(after),
                reason, None, self.prev, digest,
            )
        )  # fmt: skip
        self.prev = digest

    def close(self) -> None:
        AuditChainHead.objects.filter(pk=chain.HEAD_ID).update(seq=self.seq, hash=self.prev)


EVENT_FIELDS = [
    "id", "seq", "created_at", "actor", "actor_username", "action", "model", "target_type",
    "target_id", "target_label", "before", "after", "reason", "ip_address", "prev_hash", "hash",
]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The load


@dataclass
class _Model:
    id: int
    index: int
    name: str
    owner: int
    team: int
    members: list[int]
    versions: int
    train: int  # dataset id
    framework: tuple[str, str]
    approved: list[tuple[int, int, datetime]] = field(default_factory=list)  # (id, number, at)


def _status(rng: random.Random, recency: int) -> str:
    """Newest versions are drafts or in review; older ones were decided, many archived."""
    roll = rng.random()
    if recency == 0:
        return S.DRAFT if roll < 0.4 else S.IN_REVIEW if roll < 0.75 else S.APPROVED
    if recency <= 2:
        if roll < 0.15:
            return S.DRAFT
        return S.IN_REVIEW if roll < 0.3 else S.APPROVED if roll < 0.8 else S.REJECTED
    if roll < 0.05:
        return S.DRAFT
    return S.ARCHIVED if roll < 0.5 else S.APPROVED if roll < 0.75 else S.REJECTED


def seed(
    sizes: Sizes,
    *,
    progress: Callable[[str], None] = lambda line: None,
    seed_value: int = 16,
) -> Result:
    """Load ``sizes`` in one transaction; refuses (AlreadySeeded) if a previous load is there."""
    started = time.monotonic()
    if User.objects.filter(username=ADMIN).exists():
        raise AlreadySeeded("this database already holds a scale seed (use --reset)")
    with transaction.atomic():
        result = _load(sizes, progress, random.Random(seed_value))
        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), _TABLES):
                cursor.execute(statement)
        _summary_event(result, sizes)
        progress("counters")
        refresh_denormalized()
    progress("ANALYZE")
    analyze()
    result.seconds = time.monotonic() - started
    return result


_TABLES = [
    User, Group, User.groups.through, Dataset, RegisteredModel, ModelTag,
    RegisteredModelUserObjectPermission, RegisteredModelGroupObjectPermission, ModelVersion,
    VersionContributor, Metric, Param, VersionDataset, Review, Alias, AliasAssignment, AuditEvent,
    ReviewPolicy,
]  # fmt: skip


def refresh_denormalized() -> None:
    """Recompute whatever the model rows keep about their versions (counters, latest version,
    the ModelFramework rows) from the rows just loaded. Called once at the end of the load, in
    its transaction: the services keep them up to date afterwards (models_app.summary)."""
    summary.recompute()


def analyze() -> None:
    """Fresh planner statistics, and on PostgreSQL outside a transaction also the visibility
    map (VACUUM): autovacuum may be off, and until both exist plans are wrong and index-only
    scans visit the table (the models search took 350 ms instead of 70-95 ms after a load
    without VACUUM, bench/pages.py)."""
    vacuum = connection.vendor == "postgresql" and not connection.in_atomic_block
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)" if vacuum else "ANALYZE")


def _load(sizes: Sizes, progress, rng: random.Random) -> Result:  # noqa: PLR0915 (one pass)
    w = _Writer()
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - SPAN
    perms = dict(
        Permission.objects.filter(
            content_type__app_label="models_app", content_type__model="registeredmodel"
        ).values_list("codename", "pk")
    )
    result = Result()

    # People and teams ----------------------------------------------------------------------
    users = _Table(
        User,
        ["id", "username", "password", "first_name", "last_name", "email", "is_staff",
         "is_superuser", "is_active", "date_joined"],
    )  # fmt: skip
    user_ids = _Ids(User)
    password = make_password(DEMO_PASSWORD)
    admin_id, reviewer_id = user_ids.take(), user_ids.take()
    users.add((admin_id, ADMIN, password, "Scale", "Admin", "scale-admin@example.org",
               True, True, True, start))  # fmt: skip
    users.add((reviewer_id, REVIEWER, password, "Scale", "Reviewer",
               "scale-reviewer@example.org", False, False, True, start))  # fmt: skip
    authors = []
    for j in range(sizes.users):
        uid = user_ids.take()
        authors.append(uid)
        users.add((uid, f"{USER_PREFIX}{j:04d}", make_password(None), "Author", f"{j:04d}",
                   f"{USER_PREFIX}{j:04d}@example.org", False, False, True, start))  # fmt: skip
    names = {admin_id: ADMIN, reviewer_id: REVIEWER}
    names.update({uid: f"{USER_PREFIX}{j:04d}" for j, uid in enumerate(authors)})
    w.flush(users)

    groups = _Table(Group, ["id", "name"])
    group_ids = _Ids(Group)
    teams = [group_ids.take() for _ in range(sizes.teams)]
    for t, gid in enumerate(teams):
        groups.add((gid, f"{TEAM_PREFIX}{t:02d}"))
    risk = group_ids.take()
    groups.add((risk, RISK_TEAM))
    w.flush(groups)
    members = _Table(User.groups.through, ["id", "user", "group"])
    member_ids = _Ids(User.groups.through)
    team_members: dict[int, list[int]] = {gid: [] for gid in teams}
    for j, uid in enumerate(authors):
        gid = teams[j % sizes.teams]
        team_members[gid].append(uid)
        members.add((member_ids.take(), uid, gid))
    members.add((member_ids.take(), reviewer_id, risk))
    w.flush(members)
    progress(f"{len(authors) + 2} users, {len(teams) + 1} teams")

    # Datasets --------------------------------------------------------------------------------
    datasets = _Table(
        Dataset,
        ["id", "name", "uri", "digest", "row_count", "description", "created_by", "team",
         "created_at"],
    )  # fmt: skip
    dataset_ids = _Ids(Dataset)
    dataset_info: dict[int, tuple[str, str, str]] = {}

    def dataset(name: str, owner: int, team: int | None) -> int:
        pk = dataset_ids.take()
        uri = f"s3://datasets/{name}/"
        digest = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
        datasets.add((pk, name, uri, digest, rng.randrange(10_000, 50_000_000),
                      f"Training data {name}.", owner, team, start))  # fmt: skip
        dataset_info[pk] = (name, uri, digest)
        return pk

    train_sets = [
        dataset(f"scale-data-{k:04d}", authors[k % len(authors)], teams[k % len(teams)])
        for k in range(sizes.datasets)
    ]
    holdout = dataset(HOLDOUT, admin_id, None)
    big_train = dataset(BIG_TRAIN, admin_id, None) if sizes.big_model else None
    w.flush(datasets)
    result.holdout_dataset_id = holdout

    # Models, their tags and grants ----------------------------------------------------------
    reg = _Table(
        RegisteredModel,
        ["id", "name", "name_key", "slug", "description", "owner", "team", "task", "visibility",
         "next_version_number", "created_at", "updated_at"],
    )  # fmt: skip
    tags = _Table(ModelTag, ["id", "model", "key", "value"])
    ugrants = _Table(RegisteredModelUserObjectPermission,
                     ["id", "user", "permission", "content_object"])  # fmt: skip
    ggrants = _Table(RegisteredModelGroupObjectPermission,
                     ["id", "group", "permission", "content_object"])  # fmt: skip
    model_ids, tag_ids = _Ids(RegisteredModel), _Ids(ModelTag)
    ugrant_ids, ggrant_ids = (
        _Ids(RegisteredModelUserObjectPermission),
        _Ids(RegisteredModelGroupObjectPermission),
    )
    policies = _Table(
        ReviewPolicy,
        ["id", "model", "required_approvals", "require_description", "require_training_dataset",
         "require_metrics", "verify_artifacts", "updated_at"],
    )  # fmt: skip
    policy_ids = _Ids(ReviewPolicy)
    events = _Table(AuditEvent, EVENT_FIELDS)
    audit = _Chain(events)

    catalogue: list[_Model] = []
    count = sizes.models + (1 if sizes.big_model else 0)
    for i in range(count):
        big = i == sizes.models
        name = BIG_MODEL if big else f"{MODEL_PREFIX}{i:05d}"
        key = name_key(name)
        gid = teams[i % len(teams)]
        crew = team_members[gid]
        owner = crew[i // len(teams) % len(crew)]
        m = _Model(
            id=model_ids.take(), index=i, name=name, owner=owner, team=gid,
            members=[u for u in crew if u != owner] or [admin_id],
            versions=sizes.big_model if big else sizes.versions,
            train=big_train if big else train_sets[i % len(train_sets)],
            framework=FRAMEWORKS[i % len(FRAMEWORKS)],
        )  # fmt: skip
        catalogue.append(m)
        domain = DOMAINS[i % len(DOMAINS)]
        internal = i % 100 == 50
        visibility = "internal" if internal else "private"
        description = f"{domain.title()} model number {i}: predicts what {domain} needs."
        reg.add((m.id, name, key, key, description, owner, gid, TASKS[i % len(TASKS)],
                 visibility, m.versions + 1, start, start))  # fmt: skip
        tag_values = {"domain": domain, "tier": ("gold", "silver", "bronze")[i % 3]}
        for k, v in tag_values.items():
            tags.add((tag_ids.take(), m.id, k, v))
        for role in Role.MANAGE.implied:
            ugrants.add((ugrant_ids.take(), owner, perms[role.perm], m.id))
        for role in Role.EDIT.implied:
            ggrants.add((ggrant_ids.take(), gid, perms[role.perm], m.id))
        if big or i % 100 < 6:  # the risk team reviews about 6 % of the models
            for role in Role.REVIEW.implied:
                ggrants.add((ggrant_ids.take(), risk, perms[role.perm], m.id))
        audit.add(
            at=start, actor_id=owner, actor_name=names[owner], action="model.created",
            model_id=m.id, target_type="registeredmodel", target_id=m.id, target_label=name,
            after={"name": name, "description": description, "task": TASKS[i % len(TASKS)],
                   "visibility": visibility, "team": f"{TEAM_PREFIX}{i % len(teams):02d}",
                   "tags": {}},
        )  # fmt: skip
        # The versions have no files: the policy does not ask for them (POLICY, as the owner
        # would set it on the model's review policy page).
        policies.add((policy_ids.take(), m.id, 1, True, True, True, False, start))
        audit.add(
            at=start, actor_id=owner, actor_name=names[owner], action="policy.updated",
            model_id=m.id, target_type="registeredmodel", target_id=m.id, target_label=name,
            before={**POLICY, "verify_artifacts": True}, after=POLICY,
        )  # fmt: skip
    for table in (reg, tags, ugrants, ggrants, policies, events):
        w.flush(table)
    progress(f"{count} models")

    # Versions, bucket by bucket in time order ------------------------------------------------
    versions = _Table(
        ModelVersion,
        ["id", "model", "number", "status", "description", "created_by", "created_at",
         "updated_at", "framework", "framework_version", "python_version", "requirements",
         "submitted_by", "submitted_at", "decided_at", "content_digest", "source_run",
         "source_repository", "source_commit"],
    )  # fmt: skip
    contributors = _Table(VersionContributor, ["id", "version", "user", "first_at"])
    metrics = _Table(Metric, ["id", "version", "name", "value", "split"])
    params = _Table(Param, ["id", "version", "key", "value"])
    links = _Table(VersionDataset, ["id", "version", "model", "dataset", "role"])
    reviews = _Table(
        Review,
        ["id", "version", "reviewer", "decision", "reason", "gates", "content_digest",
         "created_at"],
    )  # fmt: skip
    ids = {t: _Ids(t.model) for t in (versions, contributors, metrics, params, links, reviews)}
    buckets = max(1, sizes.versions)
    step = SPAN / max(1, sizes.total_versions)
    clock = start
    seen = 0
    for b in range(buckets):
        for m in catalogue:
            first = b * m.versions // buckets + 1
            last = (b + 1) * m.versions // buckets
            for number in range(first, last + 1):
                clock += step
                seen += 1
                _version(m, number, clock, seen, rng, audit, names, holdout, dataset_info,
                         versions, contributors, metrics, params, links, reviews, ids)  # fmt: skip
        for table in (versions, contributors, metrics, params, links, reviews, events):
            w.flush(table)
        if b % max(1, buckets // 20) == 0 or b == buckets - 1:
            progress(f"{seen:,} of {sizes.total_versions:,} versions")

    # Aliases: production on the newest approved version, staging on the one before ----------
    aliases = _Table(Alias, ["id", "model", "name", "version", "protected", "updated_at"])
    history = _Table(
        AliasAssignment,
        ["id", "model", "alias_name", "version", "version_number", "previous_version",
         "previous_number", "kind", "note", "assigned_by", "assigned_at"],
    )  # fmt: skip
    alias_ids, history_ids = _Ids(Alias), _Ids(AliasAssignment)
    for m in catalogue:
        if len(m.approved) < 2 or m.index % 2:
            continue  # half the models have aliases
        (old_id, old_n, old_at), (new_id, new_n, new_at) = m.approved[-2], m.approved[-1]
        moves = [("production", old_id, old_n, None, None, old_at),
                 ("production", new_id, new_n, old_id, old_n, new_at),
                 ("staging", old_id, old_n, None, None, new_at)]  # fmt: skip
        for alias, vid, n, prev_id, prev_n, at in moves:
            history.add((history_ids.take(), m.id, alias, vid, n, prev_id, prev_n, "promote",
                         "", m.owner, at))  # fmt: skip
            audit.add(
                at=at, actor_id=m.owner, actor_name=names[m.owner], action="alias.moved",
                model_id=m.id, target_id=vid, target_label=f"{m.name} v{n}",
                before={"alias": alias, "version": prev_n}, after={"alias": alias, "version": n},
            )  # fmt: skip
        aliases.add((alias_ids.take(), m.id, "production", new_id, True, new_at))
        aliases.add((alias_ids.take(), m.id, "staging", old_id, True, new_at))
    for table in (aliases, history, events):
        w.flush(table)
    audit.close()
    progress(f"{aliases.written:,} aliases")

    result.counts = {
        "users": users.written, "teams": groups.written, "models": reg.written,
        "versions": versions.written, "metrics": metrics.written, "params": params.written,
        "dataset links": links.written, "datasets": datasets.written,
        "reviews": reviews.written, "aliases": aliases.written,
        "alias moves": history.written, "audit events": events.written,
        "user grants": ugrants.written, "team grants": ggrants.written,
        "review policies": policies.written,
    }  # fmt: skip
    result.big_model = BIG_MODEL if sizes.big_model else None
    return result


def _version(m: _Model, number, at, serial, rng, audit, names, holdout, dataset_info,
             versions, contributors, metrics, params, links, reviews, ids):  # fmt: skip
    """One version's rows and events (the workflow it went through, in order)."""
    vid = ids[versions].take()
    status = _status(rng, m.versions - number)
    author = m.members[number % len(m.members)]
    label = f"{m.name} v{number}"
    quality = min(0.99, 0.7 + 0.25 * number / m.versions + rng.uniform(-0.03, 0.03))
    metric_rows = [
        ("accuracy", "test", round(quality - rng.uniform(0.0, 0.05), 6)),
        ("auc", "test", round(quality, 6)),
        ("latency_ms", "", round(rng.uniform(2.0, 60.0), 3)),
        ("log_loss", "validation", round(1.0 - quality + rng.uniform(0.0, 0.1), 6)),
    ]
    param_rows = [
        ("learning_rate", str(round(rng.choice((0.01, 0.03, 0.05, 0.1)), 2))),
        ("max_depth", str(rng.randrange(3, 12))),
        ("n_estimators", str(rng.randrange(100, 1000, 50))),
    ]
    dataset_rows = [(m.train, "train")]
    if serial % 200 == 0:
        dataset_rows.append((holdout, "test"))
    framework, framework_version = m.framework
    description = f"Retrained on the data of week {number % 52 + 1}."
    source_run = f"run-{m.id}-{number}"
    commit = hashlib.sha1(source_run.encode(), usedforsecurity=False).hexdigest()

    digest = ""
    if status != S.DRAFT:
        digest = digest_of_manifest(
            {
                "format": MANIFEST_FORMAT,
                "description": description,
                "files": [],
                "metrics": [{"name": n, "split": s, "value": v} for n, s, v in metric_rows],
                "params": [{"key": k, "value": v} for k, v in param_rows],
                "dependencies": {
                    "framework": framework,
                    "framework_version": framework_version,
                    "python_version": "3.12",
                    "requirements": "",
                    "packages": [],
                },  # fmt: skip
                "datasets": sorted(
                    (
                        {
                            "name": dataset_info[d][0],
                            "role": role,
                            "uri": dataset_info[d][1],
                            "digest": dataset_info[d][2],
                        }  # fmt: skip
                        for d, role in dataset_rows
                    ),
                    key=lambda d: (d["name"], d["role"]),
                ),
                "parents": [],
                "source": {"run": source_run, "repository": "", "commit": commit},
                "signature": None,
                "card": None,
            }
        )
    submitted_at = at + timedelta(seconds=1) if status != S.DRAFT else None
    decided_at = at + timedelta(seconds=2) if status not in (S.DRAFT, S.IN_REVIEW) else None
    reviewer = m.owner
    versions.add((vid, m.id, number, status, description, author, at, decided_at or submitted_at
                  or at, framework, framework_version, "3.12", "", author if submitted_at else None,
                  submitted_at, decided_at, digest, source_run, "", commit))  # fmt: skip
    contributors.add((ids[contributors].take(), vid, author, at))
    for n, s, v in metric_rows:
        metrics.add((ids[metrics].take(), vid, n, v, s))
    for k, v in param_rows:
        params.add((ids[params].take(), vid, k, v))
    for d, role in dataset_rows:
        links.add((ids[links].take(), vid, m.id, d, role))

    who = {"actor_id": author, "actor_name": names[author], "model_id": m.id,
           "target_id": vid, "target_label": label}  # fmt: skip
    audit.add(at=at, action="version.created", **who, after={
        "number": number, "files": [],
        "metrics": {n + (f"@{s}" if s else ""): v for n, s, v in metric_rows},
    })  # fmt: skip
    if status == S.DRAFT:
        return
    audit.add(at=submitted_at, action="version.submitted", **who, before={"status": S.DRAFT},
              after={"status": S.IN_REVIEW, "content_digest": digest})  # fmt: skip
    if status == S.IN_REVIEW:
        return
    decider = {**who, "actor_id": reviewer, "actor_name": names[reviewer]}
    rejected = status == S.REJECTED or (status == S.ARCHIVED and number % 3 == 0)
    if rejected:
        reason = "Accuracy below the production version on the holdout set."
        reviews.add((ids[reviews].take(), vid, reviewer, "reject", reason, "[]", digest,
                     decided_at))  # fmt: skip
        audit.add(at=decided_at, action="review.rejected", **decider, reason=reason,
                  before={"status": S.IN_REVIEW},
                  after={"status": S.REJECTED, "content_digest": digest})  # fmt: skip
    else:
        reviews.add((ids[reviews].take(), vid, reviewer, "approve", "", "[]", digest,
                     decided_at))  # fmt: skip
        audit.add(at=decided_at, action="review.approved", **decider,
                  after={"gates_failed": [], "content_digest": digest})  # fmt: skip
        audit.add(
            at=decided_at,
            action="version.approved",
            **decider,
            before={"status": S.IN_REVIEW},
            after={"status": S.APPROVED, "approvals": 1},
        )
        if status == S.APPROVED:
            m.approved = [*m.approved[-1:], (vid, number, decided_at)]
    if status == S.ARCHIVED:
        audit.add(at=decided_at + timedelta(seconds=1), action="version.archived", **decider,
                  before={"status": S.REJECTED if rejected else S.APPROVED},
                  after={"status": S.ARCHIVED})  # fmt: skip


def _summary_event(result: Result, sizes: Sizes) -> None:
    """One event saying a scale seed was loaded, through audit.chain.record after the bulk
    events (which also proves the chain head was left where record() expects it)."""
    chain.record(
        actor=User.objects.get(username=ADMIN),
        action="scale.seeded",
        after={
            "models": sizes.models,
            "versions_per_model": sizes.versions,
            "big_model_versions": sizes.big_model,
            "rows": result.counts,
        },
    )
