"""A version's metadata resume, read from the run (and logged model) it is registered from.

Pure read, a constant number of queries: the run's parameters, the latest value of each metric
with its step, its input datasets with their role, the training run, the code repository,
commit and script from its ``mlflow.source.*`` tags, and the logged model's parameters. The
registration fills only what its request left empty (``fill``); the catalogue's parser then
checks the whole document as for any other version.

What does not fit a version is said, not dropped silently: a metric whose latest value is NaN or
infinite (tracking keeps them as MLflow does, versions take finite numbers only) is left out and
named in the ``registry.skipped_metrics`` tag; an input whose ``mlflow.data.context`` is not
training, validation or test gets the closest role and its context in the
``registry.dataset_contexts`` tag.
"""

import json
import sys
from dataclasses import dataclass, field

from models_app.models import Dataset, VersionDataset
from tracking.models import LoggedModel, Run

FLOAT_MAX = sys.float_info.max  # how tracking stores ±infinity, as MLflow does
SKIPPED_TAG = "registry.skipped_metrics"
CONTEXTS_TAG = "registry.dataset_contexts"
SCRIPT_TAG = "mlflow.source.name"
REPOSITORY_TAG = "mlflow.source.git.repoURL"
COMMIT_TAG = "mlflow.source.git.commit"
MAX_DATASET_NAME = 200  # a registry dataset's name
MAX_URI = 1000
MAX_COMMIT = 64
MAX_REPOSITORY = 500
MAX_TAG_VALUE = 5000

ROLES = {
    "training": VersionDataset.Role.TRAIN,
    "train": VersionDataset.Role.TRAIN,
    "validation": VersionDataset.Role.VALIDATION,
    "valid": VersionDataset.Role.VALIDATION,
    "val": VersionDataset.Role.VALIDATION,
    "eval": VersionDataset.Role.VALIDATION,
    "evaluation": VersionDataset.Role.VALIDATION,
    "test": VersionDataset.Role.TEST,
    "testing": VersionDataset.Role.TEST,
}


def role_of(context: str) -> tuple[str, bool]:
    """The dataset role for an ``mlflow.data.context``, and whether it was a known context.
    Unknown ones take the closest role by what they mention (training when nothing fits)."""
    text = context.strip().lower()
    if text in ROLES:
        return ROLES[text], True
    if "test" in text or "holdout" in text:
        return VersionDataset.Role.TEST, False
    if "val" in text or "eval" in text or "dev" in text:
        return VersionDataset.Role.VALIDATION, False
    return VersionDataset.Role.TRAIN, False


def source_uri(source: str) -> str:
    """The URI in an MLflow dataset source (a JSON object such as ``{"uri": "s3://…"}``)."""
    try:
        parsed = json.loads(source)
    except ValueError:
        return ""
    uri = parsed.get("uri") if isinstance(parsed, dict) else None
    if not isinstance(uri, str):
        uri = parsed.get("url") if isinstance(parsed, dict) else None
    return uri if isinstance(uri, str) and len(uri) <= MAX_URI else ""


@dataclass
class Resume:
    """What the run says about a version, as fields of a metadata document."""

    params: dict[str, str] = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)
    datasets: list[dict] = field(default_factory=list)
    source_run: str = ""
    source_repository: str = ""
    source_commit: str = ""
    tags: dict[str, str] = field(default_factory=dict)


def _datasets(run: Run, notes: dict[str, list[str]]) -> list[dict]:
    """The run's inputs as dataset references. A name the registry holds with another URI or
    digest is kept apart as ``name@digest`` (MLflow tells datasets apart by name and digest;
    the registry by name), so a retrained model's new data never rewrites the record that
    earlier versions were reviewed against."""
    rows: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for given in run.inputs.all():
        role, known = role_of(given.context)
        if not known:
            notes["contexts"].append(f"{given.name}: {given.context or '(none)'} → {role}")
        if (given.name, role) in seen:
            continue
        seen.add((given.name, role))
        rows.append(
            {"name": given.name, "role": role, "uri": source_uri(given.source),
             "digest": given.digest}
        )  # fmt: skip
    names = {r["name"] for r in rows} | {f"{r['name']}@{r['digest']}" for r in rows}
    recorded = {
        d.name: (d.uri, d.digest)
        for d in Dataset.objects.filter(name__in=sorted(names)).only("name", "uri", "digest")
    }
    for row in rows:
        held = recorded.get(row["name"])
        if held is not None and held != (row["uri"], row["digest"]) and row["digest"]:
            row["name"] = f"{row['name']}@{row['digest']}"
        if len(row["name"]) > MAX_DATASET_NAME:
            notes["contexts"].append(f"{row['name'][:60]}…: name over 200 characters, left out")
            row["name"] = ""
    return [r for r in rows if r["name"]]


def resume_of(run: Run, logged_model: LoggedModel | None = None) -> Resume:
    """The resume of ``run`` (and of ``logged_model``, one of its models, when registering
    it). Five queries with a logged model, four without."""
    notes: dict[str, list[str]] = {"skipped": [], "contexts": []}
    resume = Resume(source_run=run.pk)
    resume.params = {p.key: p.value for p in run.params.all()}
    if logged_model is not None:
        resume.params |= {p.key: p.value for p in logged_model.params.all()}
    for latest in run.latest_metrics.all():
        if latest.is_nan or abs(latest.value) >= FLOAT_MAX:
            what = "NaN" if latest.is_nan else ("infinity" if latest.value > 0 else "-infinity")
            notes["skipped"].append(f"{latest.key} ({what} at step {latest.step})")
            continue
        resume.metrics.append({"name": latest.key, "value": latest.value, "step": latest.step})
    tags = {t.key: t.value for t in run.tags.all()}
    repository = tags.get(REPOSITORY_TAG, "")
    commit = tags.get(COMMIT_TAG, "")
    resume.source_repository = repository if len(repository) <= MAX_REPOSITORY else ""
    resume.source_commit = commit if len(commit) <= MAX_COMMIT else ""
    if tags.get(SCRIPT_TAG):
        resume.tags[SCRIPT_TAG] = tags[SCRIPT_TAG][:MAX_TAG_VALUE]
    resume.datasets = _datasets(run, notes)
    if notes["skipped"]:
        resume.tags[SKIPPED_TAG] = (
            "Not finite, so not recorded as version metrics: " + "; ".join(notes["skipped"])
        )[:MAX_TAG_VALUE]
    if notes["contexts"]:
        resume.tags[CONTEXTS_TAG] = "; ".join(notes["contexts"])[:MAX_TAG_VALUE]
    return resume


def fill(document: dict, resume: Resume) -> dict:
    """The metadata document with the fields it leaves empty taken from the resume; tags are
    merged (the document's win)."""
    filled = dict(document)
    for name in ("params", "metrics", "datasets", "source_run", "source_repository",
                 "source_commit"):  # fmt: skip
        if not filled.get(name):
            filled[name] = getattr(resume, name)
    filled["tags"] = {**resume.tags, **(filled.get("tags") or {})}
    return filled
