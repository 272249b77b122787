"""What must hold in a registry whatever failed while it ran (``manage.py check_invariants``).

- every artifact row (of any version), every staged MLflow upload and every file of a run or
  logged model names a stored object of its recorded size and SHA-256;
- no stored object under ``artifacts/`` or ``tracking/`` that no row of any of those tables
  names (one stored object may back several rows) once the grace period has passed (an
  upload in progress stores its files before the transaction that records them; its pending
  key dates it, as in ``sweep_orphans``);
- version numbers are unique per model and below the model's next number (never reused);
- each model's summary (latest version number, version count, count per status) is what its
  versions say;
- each dataset link names its version's model (VersionDataset.model, kept for the dataset
  pages' visibility check);
- a protected alias names one version of its own model, an approved one (or one rejected on
  revalidation after it was put there: aliases are not moved on their own);
- every state change left its audit event: each version its ``version.created``, each version
  in review, approved, rejected or archived the event that put it there, each alias the move
  that points it at its version; and the audit chain verifies;
- every electronic signature verifies against the audit event written with it (the checks of
  ``manage.py verify_signatures``: ``approvals.selectors.signature_problems``);
- the tracking data holds together: each run's latest value of a metric is the latest point of
  that metric's history (by step, then timestamp, then value, NaN lowest, as MLflow ranks
  them: ``tracking.services.runs._rank``) and its number of values is the history's; each
  metric with a history has one; a run's output and a logged model's source run are in the
  logged model's experiment; a tracked file belongs to exactly one run or logged model.

Versions and aliases that came in with ``import_registry`` keep their history in the imported
audit batch rather than in this registry's chain, so their events are not looked for here
(``verify_audit`` checks the imported batches).

The checks stream: rows are read in batches of keys, stored objects are listed folder by folder,
and files are hashed in chunks, so memory stays bounded whatever the registry's size.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from itertools import chain

from django.core.files.storage import default_storage
from django.db.models import Count, Exists, F, Max, OuterRef, Q, Subquery
from django.utils import timezone

from approvals.models import Alias
from approvals.selectors import all_signatures
from audit.chain import verify_chain
from audit.models import AuditEvent
from exchange.models import ImportedAuditEvent, RegistryImport
from models_app import storage, summary
from models_app.models import (
    Artifact,
    ModelVersion,
    PendingKey,
    RegisteredModel,
    VersionDataset,
)
from registry_site.mlflow_compat.models import StagedArtifact
from tracking.models import LatestMetric, LoggedModel, Metric, RunOutput, TrackedFile

PREFIX = "artifacts"
PREFIXES = (PREFIX, "tracking")  # versions' and staged files; runs' and logged models' files
BATCH = 500
DEFAULT_GRACE = timedelta(minutes=60)  # the sweeper's default --min-age-minutes

S = ModelVersion.Status
# The events that leave a version in each status, one of them at least (drafts:
# version.created, checked for all).
STATUS_EVENTS = {
    S.IN_REVIEW: ("version.submitted",),
    S.APPROVED: ("version.approved",),
    S.REJECTED: ("review.rejected", "version.revalidation_rejected"),
    S.ARCHIVED: ("version.archived",),
}
ALIAS_EVENTS = ("alias.moved", "alias.rolled_back", "alias.removed")


@dataclass(frozen=True)
class Violation:
    kind: str  # a short name, stable for scripts: "missing_file", "orphan_file", …
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def check_all(*, grace: timedelta = DEFAULT_GRACE, verify_digests: bool = True) -> list[Violation]:
    """Every check below, in order; an empty list when the registry is consistent."""
    return [
        *check_files(verify_digests=verify_digests),
        *check_orphans(grace=grace),
        *check_numbers(),
        *check_summaries(),
        *check_frameworks(),
        *check_metric_keys(),
        *check_dataset_links(),
        *check_aliases(),
        *check_audit(),
        *check_signatures(),
        *check_tracking(),
    ]


# ---------------------------------------------------------------------------------------------
# Files


def walk(folder: str = PREFIX) -> Iterator[str]:
    """Every stored key under ``folder``, depth first (listdir works on local storage and S3)."""
    try:
        dirs, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in sorted(files):
        yield f"{folder}/{name}"
    for name in sorted(dirs):
        yield from walk(f"{folder}/{name}")


def batches(iterable, size: int = BATCH) -> Iterator[list]:
    batch = []
    for item in iterable:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _by_pk(queryset, fields: list[str], size: int = BATCH) -> Iterator[list[dict]]:
    """Rows in batches by primary key (keyset pagination: no long-lived cursor)."""
    last = 0
    while True:
        rows = list(queryset.filter(pk__gt=last).order_by("pk").values("pk", *fields)[:size])
        if not rows:
            return
        yield rows
        last = rows[-1]["pk"]


def _file_problem(key: str, size: int, sha256: str, *, verify_digests: bool) -> str:
    try:
        if verify_digests:
            stored_size, stored_sha = storage.stored_digest(key)
        else:
            stored_size, stored_sha = default_storage.size(key), sha256
    except FileNotFoundError:
        return "is missing from storage"
    except Exception as e:  # noqa: BLE001 (S3 reports a missing key as ClientError 404 etc.)
        if "404" in str(e) or "NoSuchKey" in str(e) or "Not Found" in str(e):
            return "is missing from storage"
        return f"cannot be read ({type(e).__name__}: {e})"
    if stored_size != size:
        return f"has {stored_size} bytes in storage, {size} recorded"
    if stored_sha != sha256:
        return "has another SHA-256 in storage than recorded"
    return ""


def check_files(*, verify_digests: bool = True) -> list[Violation]:
    """Every artifact and staged upload names a stored object of its recorded size/digest."""
    found = []
    fields = ["storage_key", "size", "sha256", "path", "version__number", "version__model__name"]
    for rows in _by_pk(Artifact.objects.all(), fields):
        for r in rows:
            problem = _file_problem(
                r["storage_key"], r["size"], r["sha256"], verify_digests=verify_digests
            )
            if problem:
                found.append(
                    Violation(
                        "missing_file" if "missing" in problem else "file_mismatch",
                        f"{r['version__model__name']} v{r['version__number']} {r['path']} "
                        f"({r['storage_key']}) {problem}",
                    )
                )
    for rows in _by_pk(StagedArtifact.objects.all(), ["storage_key", "size", "sha256", "path"]):
        for r in rows:
            problem = _file_problem(
                r["storage_key"], r["size"], r["sha256"], verify_digests=verify_digests
            )
            if problem:
                found.append(
                    Violation(
                        "missing_file" if "missing" in problem else "file_mismatch",
                        f"staged upload {r['path']} ({r['storage_key']}) {problem}",
                    )
                )
    fields = ["storage_key", "size", "sha256", "path", "run_id", "logged_model_id"]
    for rows in _by_pk(TrackedFile.objects.all(), fields):
        for r in rows:
            problem = _file_problem(
                r["storage_key"], r["size"], r["sha256"], verify_digests=verify_digests
            )
            if problem:
                owner = f"run {r['run_id']}" if r["run_id"] else f"model {r['logged_model_id']}"
                found.append(
                    Violation(
                        "missing_file" if "missing" in problem else "file_mismatch",
                        f"{owner}'s file {r['path']} ({r['storage_key']}) {problem}",
                    )
                )
    return found


def check_orphans(*, grace: timedelta = DEFAULT_GRACE) -> list[Violation]:
    """Stored objects no row points at (artifacts, staged uploads, run files), older than
    ``grace``."""
    found = []
    cutoff = timezone.now() - grace
    for keys in batches(chain.from_iterable(walk(p) for p in PREFIXES)):
        known = storage.referenced(keys)
        pending = dict(PendingKey.objects.filter(key__in=keys).values_list("key", "created_at"))
        for key in keys:
            if key in known:
                continue
            try:  # as sweep_orphans: a pending key dates from when its operation started
                stored = pending.get(key) or default_storage.get_modified_time(key)
            except FileNotFoundError:
                continue  # deleted while we looked
            if stored <= cutoff:
                found.append(Violation("orphan_file", f"{key} is stored but no row names it"))
    return found


# ---------------------------------------------------------------------------------------------
# Numbers and aliases


def check_numbers() -> list[Violation]:
    found = []
    duplicates = (
        ModelVersion.objects.values("model_id", "model__name", "number")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .order_by("model_id", "number")
    )
    for d in duplicates:
        found.append(
            Violation(
                "duplicate_number",
                f"{d['model__name']} has {d['n']} versions numbered {d['number']}",
            )
        )
    ahead = (
        RegisteredModel.objects.annotate(top=Max("versions__number"))
        .filter(top__gte=F("next_version_number"))
        .values_list("name", "top", "next_version_number")
    )
    for name, top, next_number in ahead:
        found.append(
            Violation(
                "number_reuse",
                f"{name} has version {top} but would give out {next_number} next",
            )
        )
    return found


def check_summaries() -> list[Violation]:
    """Each model's summary columns (latest number, version count, count per status: kept by
    the services, models_app.summary) equal what its versions say."""
    found = []
    for model in summary.wrong_counts().iterator(chunk_size=BATCH):
        pairs = [(c, getattr(model, c), getattr(model, f"true_{c}")) for c in summary.COLUMNS]
        wrong = ", ".join(
            f"{column} {kept} (the versions say {true})"
            for column, kept, true in pairs
            if kept != true
        )
        found.append(Violation("wrong_summary", f"{model.name}: {wrong}"))
    return found


def check_frameworks() -> list[Violation]:
    """Each model's ModelFramework rows (how many of its versions name each framework: kept by
    the services, models_app.summary) equal what its versions say."""
    wrong = summary.wrong_frameworks()
    names = dict(RegisteredModel.objects.filter(pk__in=list(wrong)).values_list("pk", "name"))
    return [
        Violation(
            "wrong_frameworks",
            f"{names.get(model, model)}: frameworks {kept} (the versions say {true})",
        )
        for model, (kept, true) in sorted(wrong.items())
    ]


def check_metric_keys() -> list[Violation]:
    """Each model's ModelMetricKey rows (how many of its versions carry each metric: kept by
    the services, models_app.summary) equal what its versions' metrics say."""
    wrong = summary.wrong_metric_keys()
    names = dict(RegisteredModel.objects.filter(pk__in=list(wrong)).values_list("pk", "name"))

    def shown(counts: dict) -> dict:
        return {
            f"{name}@{split}" if split else name: n for (name, split), n in sorted(counts.items())
        }

    return [
        Violation(
            "wrong_metric_keys",
            f"{names.get(model, model)}: metrics {shown(kept)} (the versions say {shown(true)})",
        )
        for model, (kept, true) in sorted(wrong.items())
    ]


def check_dataset_links() -> list[Violation]:
    """Each dataset link keeps its version's model (set by every writer of links)."""
    wrong = (
        VersionDataset.objects.exclude(model_id=F("version__model_id"))
        .order_by("pk")
        .values_list("dataset__name", "version__model__name", "version__number", "model__name")
    )
    return [
        Violation(
            "wrong_link_model",
            f"dataset {dataset}'s link to {model} v{number} names model {kept}",
        )
        for dataset, model, number, kept in wrong.iterator(chunk_size=BATCH)
    ]


def check_aliases() -> list[Violation]:
    found = []
    duplicates = (
        Alias.objects.values("model_id", "model__name", "name")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .order_by("model_id", "name")
    )
    for d in duplicates:
        found.append(
            Violation(
                "alias_holders", f"{d['model__name']}@{d['name']} has {d['n']} holders at once"
            )
        )
    wrong = (
        Alias.objects.filter(protected=True)
        .exclude(version__model_id=F("model_id"), version__status=S.APPROVED)
        .exclude(
            version__model_id=F("model_id"),
            version__status=S.REJECTED,
            version__review_round__gt=0,  # rejected in a revalidation round
        )
    )
    for model_name, name, number, status, other in wrong.values_list(
        "model__name", "name", "version__number", "version__status", "version__model__name"
    ):
        if other != model_name:
            problem = f"names version {number} of another model, {other}"
        else:
            problem = f"names version {number}, which is {status}, not approved"
        found.append(Violation("alias_holder", f"{model_name}@{name} {problem}"))
    return found


# ---------------------------------------------------------------------------------------------
# Audit


def _imported_since() -> dict[int, object]:
    """Imported models: their id → when the latest import that brought them happened. Their
    rows from before then have their history in the imported batch, not in this chain."""
    when = {}
    batches_at = dict(RegistryImport.objects.values_list("pk", "imported_at"))
    rows = (
        ImportedAuditEvent.objects.exclude(registered_model=None)
        .values_list("registered_model_id", "batch_id")
        .distinct()
    )
    for model_id, batch_id in rows:
        when[model_id] = max(when.get(model_id, batches_at[batch_id]), batches_at[batch_id])
    named = {}
    for batch in RegistryImport.objects.only("model_names", "imported_at"):
        for name in batch.model_names:
            named[name] = max(named.get(name, batch.imported_at), batch.imported_at)
    if named:
        for pk, name in RegisteredModel.objects.filter(name__in=list(named)).values_list(
            "pk", "name"
        ):
            when[pk] = max(when.get(pk, named[name]), named[name])
    return when


def check_audit() -> list[Violation]:
    found = []
    imported = _imported_since()
    wanted = ("version.created", *{a for actions in STATUS_EVENTS.values() for a in actions})
    fields = ["model_id", "model__name", "number", "status", "created_at"]
    for rows in _by_pk(ModelVersion.objects.all(), fields):
        ids = [str(r["pk"]) for r in rows]
        seen = set(
            AuditEvent.objects.filter(
                target_type="modelversion", target_id__in=ids, action__in=wanted
            ).values_list("target_id", "action")
        )
        for r in rows:
            since = imported.get(r["model_id"])
            if since is not None and r["created_at"] <= since:
                continue
            label = f"{r['model__name']} v{r['number']}"
            if (str(r["pk"]), "version.created") not in seen:
                found.append(Violation("audit_missing", f"{label} has no version.created event"))
            actions = STATUS_EVENTS.get(r["status"], ())
            if actions and not any((str(r["pk"]), action) in seen for action in actions):
                found.append(
                    Violation(
                        "audit_missing", f"{label} is {r['status']} without {' or '.join(actions)}"
                    )
                )
    found += _check_alias_events(imported)
    report = verify_chain()
    if not report.ok:
        found.append(Violation("audit_chain", report.problem))
    return found


def _check_alias_events(imported: dict) -> list[Violation]:
    """Each alias names the version its latest move recorded (batched by model)."""
    found = []
    fields = ["model_id", "model__name", "name", "version__number", "updated_at"]
    for rows in _by_pk(Alias.objects.all(), fields):
        latest: dict[tuple[int, str], tuple[str, object]] = {}
        events = (
            AuditEvent.objects.filter(
                model_id__in={r["model_id"] for r in rows}, action__in=ALIAS_EVENTS
            )
            .order_by("seq")
            .values_list("model_id", "action", "before", "after")
        )
        for model_id, action, before, after in events.iterator(chunk_size=BATCH):
            data = (after if action != "alias.removed" else before) or {}
            latest[(model_id, data.get("alias"))] = (action, data.get("version"))
        for r in rows:
            since = imported.get(r["model_id"])
            if since is not None and r["updated_at"] <= since:
                continue
            label = f"{r['model__name']}@{r['name']}"
            action, number = latest.get((r["model_id"], r["name"]), (None, None))
            if action is None or action == "alias.removed":
                found.append(
                    Violation(
                        "audit_missing", f"{label} holds v{r['version__number']} without a move"
                    )
                )
            elif number != r["version__number"]:
                found.append(
                    Violation(
                        "audit_missing",
                        f"{label} holds v{r['version__number']}, its last move recorded v{number}",
                    )
                )
    return found


def check_signatures() -> list[Violation]:
    """Each signature against its audit event (two queries per batch of signatures)."""
    return [
        Violation(
            "signature",
            f"signature #{s.pk} of {s.model_name} v{s.version_number} by {s.printed_name} "
            f"does not verify: {'; '.join(s.problems)}",
        )
        for s in all_signatures(batch_size=BATCH)
        if not s.verifies
    ]


# ---------------------------------------------------------------------------------------------
# Tracking


def check_tracking() -> list[Violation]:
    return [
        *check_latest_metrics(),
        *check_run_outputs(),
        *check_source_runs(),
        *check_tracked_file_owners(),
    ]


def _shown(value: float, is_nan: bool) -> str:
    return "NaN" if is_nan else repr(value)


# MLflow's order, highest first: step, timestamp, a number above NaN, then the value (NaN is
# stored as 0 with is_nan set, so among NaNs the value ties).
LATEST_FIRST = ("-step", "-timestamp", "is_nan", "-value", "-pk")


def check_latest_metrics() -> list[Violation]:
    """Each LatestMetric row equals the latest point of its metric's history and counts its
    points (one query per batch: both come from the (run, key, step, timestamp) index), and
    each metric logged to a run has its LatestMetric row."""
    found = []
    history = Metric.objects.filter(run=OuterRef("run"), key=OuterRef("key"))
    top = history.order_by(*LATEST_FIRST)
    counted = history.order_by().values("run").annotate(n=Count("*")).values("n")
    latest = LatestMetric.objects.annotate(
        **{
            f"top_{f}": Subquery(top.values(f)[:1])
            for f in ("step", "timestamp", "is_nan", "value")
        },
        true_count=Subquery(counted),
    )
    fields = ["run_id", "key", "step", "timestamp", "is_nan", "value", "history_count"]
    tops = ["top_step", "top_timestamp", "top_is_nan", "top_value", "true_count"]
    for rows in _by_pk(latest, fields + tops):
        for r in rows:
            label = f"run {r['run_id']} metric {r['key']!r}"
            if r["top_step"] is None:
                found.append(
                    Violation("latest_metric", f"{label} has a latest value but no history")
                )
                continue
            kept = (r["step"], r["timestamp"], r["is_nan"], 0.0 if r["is_nan"] else r["value"])
            true = (
                r["top_step"],
                r["top_timestamp"],
                r["top_is_nan"],
                0.0 if r["top_is_nan"] else r["top_value"],
            )
            if kept != true:
                found.append(
                    Violation(
                        "latest_metric",
                        f"{label}: latest {_shown(kept[3], kept[2])} at step {kept[0]}, "
                        f"time {kept[1]}; the history says {_shown(true[3], true[2])} at step "
                        f"{true[0]}, time {true[1]}",
                    )
                )
            if r["history_count"] != r["true_count"]:
                found.append(
                    Violation(
                        "metric_count",
                        f"{label}: {r['history_count']} values counted; the history holds "
                        f"{r['true_count']}",
                    )
                )
    unkept = (
        Metric.objects.exclude(
            Exists(LatestMetric.objects.filter(run=OuterRef("run"), key=OuterRef("key")))
        )
        .values_list("run_id", "key")
        .distinct()
        .order_by("run_id", "key")
    )
    for run_id, key in unkept.iterator(chunk_size=BATCH):
        found.append(
            Violation(
                "latest_metric", f"run {run_id} metric {key!r} has a history but no latest value"
            )
        )
    return found


def check_run_outputs() -> list[Violation]:
    """A run's output is a logged model of the run's own experiment."""
    wrong = (
        RunOutput.objects.exclude(logged_model__experiment_id=F("run__experiment_id"))
        .order_by("pk")
        .values_list(
            "run_id", "run__experiment_id", "logged_model_id", "logged_model__experiment_id"
        )
    )
    return [
        Violation(
            "output_elsewhere",
            f"run {run_id} (experiment {run_exp}) outputs logged model {model_id} of "
            f"experiment {model_exp}",
        )
        for run_id, run_exp, model_id, model_exp in wrong.iterator(chunk_size=BATCH)
    ]


def check_source_runs() -> list[Violation]:
    """A logged model's source run is a run of the logged model's experiment."""
    wrong = (
        LoggedModel.objects.filter(source_run__isnull=False)
        .exclude(source_run__experiment_id=F("experiment_id"))
        .order_by("pk")
        .values_list("pk", "experiment_id", "source_run_id", "source_run__experiment_id")
    )
    return [
        Violation(
            "source_run_elsewhere",
            f"logged model {model_id} (experiment {model_exp}) comes from run {run_id} of "
            f"experiment {run_exp}",
        )
        for model_id, model_exp, run_id, run_exp in wrong.iterator(chunk_size=BATCH)
    ]


def check_tracked_file_owners() -> list[Violation]:
    """A tracked file belongs to exactly one run or logged model (a database constraint too:
    this finds rows written past it)."""
    wrong = (
        TrackedFile.objects.filter(
            Q(run__isnull=True, logged_model__isnull=True)
            | Q(run__isnull=False, logged_model__isnull=False)
        )
        .order_by("pk")
        .values_list("pk", "path", "storage_key", "run_id", "logged_model_id")
    )
    found = []
    for pk, path, key, run_id, model_id in wrong.iterator(chunk_size=BATCH):
        owners = f"run {run_id} and logged model {model_id}" if run_id else "no run or logged model"
        found.append(
            Violation("tracked_file_owner", f"tracked file #{pk} {path} ({key}) has {owners}")
        )
    return found
