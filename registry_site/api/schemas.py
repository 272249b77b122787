"""The API's typed schemas: what it accepts (strict: unknown fields and wrong JSON types are a
400) and what it answers. The OpenAPI document is generated from these same classes.

Input schemas check shape and types only; the rules (names, metadata, workflow) stay in the
services and in models_app.metadata, which the routes call with the validated data.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from models_app.access import Role
from models_app.metadata import MAX_DATASETS, MAX_PARENTS
from models_app.models import ModelVersion, RegisteredModel, VersionDataset, VersionParent

from .helpers import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT, MAX_PAGE

# Fields the registry sets itself: sending one in an update is a 400 naming it.
PROTECTED_FIELDS = {
    "id", "number", "status", "created_by", "created_at", "updated_at", "owner", "slug",
    "submitted_by", "submitted_at", "decided_at", "files", "reviews", "aliases",
}  # fmt: skip

Tasks = Literal[tuple(RegisteredModel.Task.values)]
Visibilities = Literal[tuple(RegisteredModel.Visibility.values)]
Statuses = Literal[tuple(ModelVersion.Status.values)]
DatasetRoles = Literal[tuple(VersionDataset.Role.values)]
Relations = Literal[tuple(VersionParent.Relation.values)]
RoleName = Literal[tuple(r.value for r in Role)]


def Text(max_length: int, min_length: int = 0):  # noqa: N802 (a type alias factory)
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length)]


Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def _refuse_unstorable(value: Any, where: str = "") -> None:
    """NUL characters and lone surrogates cannot be stored in PostgreSQL text: refuse them
    here, saying where, instead of failing in the database."""
    at = f"{where}: " if where else ""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{at}must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{at}must be valid Unicode text") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_unstorable(key, f"{where}.{key!r} (key)" if where else f"{key!r} (key)")
            _refuse_unstorable(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_unstorable(item, f"{where}[{i}]")


class In(BaseModel):
    """Base of every request body: strict types, no unknown fields, storable text only."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, value: Any, info: ValidationInfo) -> Any:
        _refuse_unstorable(value)
        return value


# ---------------------------------------------------------------------------------------------
# Query parameters


class PageQuery(BaseModel):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page (≤ 200).")
    page: int = Field(1, ge=1, le=MAX_PAGE, description="Page number, from 1.")


class ModelFilters(PageQuery):
    q: Text(200) = Field("", description="Search names, descriptions and tags.")
    team: Text(150) = ""
    owner: Text(150) = ""
    framework: Text(100) = Field("", description="Has a version with this framework.")
    task: Tasks | Literal[""] = ""
    tag: Text(500) = Field("", description="key or key=value")
    status: Statuses | Literal[""] = Field("", description="Has a version in this status.")
    sort: Literal["name", "-updated_at", "-created_at", "-latest"] = "name"


class VersionFilters(PageQuery):
    status: Statuses | Literal[""] = ""


class AuditFilters(PageQuery):
    model: Text(200) = Field("", description="Model name or slug.")
    actor: Text(150) = Field("", description="Username.")
    action: Text(64) = Field("", description="An action, or a prefix ending in '.' (review.)")
    since: Text(40) = Field("", description="ISO-8601 date or date-time (UTC if no offset).")
    until: Text(40) = Field("", description="ISO-8601 date or date-time (UTC if no offset).")


class LinkPageQuery(BaseModel):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page (≤ 200).")
    after: Text(200) = Field("", description="The cursor of a `next` link: the items after it.")
    before: Text(200) = Field(
        "", description="The cursor of a `previous` link: the items before it."
    )
    page: int | None = Field(
        None, description="Not accepted: this list pages by cursor (follow `next`)."
    )


class DatasetFilters(PageQuery):
    q: Text(200) = Field("", description="Search names and URIs.")


# ---------------------------------------------------------------------------------------------
# Request bodies

TagKey = Text(250, 1)
TagValue = Text(5000)


class ModelCreateIn(In):
    name: Text(200, 1)
    description: Text(100_000) = ""
    task: Tasks = RegisteredModel.Task.CLASSIFICATION.value
    visibility: Visibilities = RegisteredModel.Visibility.PRIVATE.value
    team: Text(150) | None = Field(None, description="A team you belong to.")
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=200)
    metric_directions: dict[Text(250, 1), bool] = Field(
        default_factory=dict, max_length=200, description="metric: true if higher is better"
    )


class ModelPatchIn(In):
    name: Text(200, 1) = None
    description: Text(100_000) = None
    task: Tasks = None
    visibility: Visibilities = None
    team: Text(150) | None = Field(None, description="A team you belong to; null removes it.")
    tags: dict[TagKey, TagValue] = Field(None, max_length=200, description="Replaces all tags.")


class MetricIn(In):
    name: Text(250, 1)
    value: float
    split: Text(100) = ""


class SourceIn(In):
    run: Text(500) = ""
    repository: Text(500) = ""
    commit: Text(64) = ""


class DatasetRefIn(In):
    name: Text(200, 1)
    role: DatasetRoles = VersionDataset.Role.TRAIN.value
    uri: Text(1000) = ""
    digest: Text(200) = ""
    rows: int | None = Field(None, ge=0, le=2**63 - 1)
    description: Text(5000) = ""


class ParentIn(In):
    model: Text(100, 1)
    version: Id
    relation: Relations = VersionParent.Relation.RETRAINED.value


class VersionMetadataIn(In):
    """A version's metadata; the registry's metadata parser checks the whole document."""

    description: Text(20_000) = ""
    framework: Text(100) = ""
    framework_version: Text(50) = ""
    python_version: Text(20) = ""
    requirements: Text(100_000) | list[Text(1000)] = Field(
        "", description="requirements.txt text, or one requirement per item"
    )
    signature: dict[str, Any] | None = Field(None, description="Inputs/outputs, any JSON object")
    source: SourceIn | None = None
    metrics: list[MetricIn] | dict[Text(250, 1), float] = Field(
        default_factory=list, description='[{"name", "value", "split"}] or {"name": value}'
    )
    params: dict[Text(250, 1), Text(6000) | int | float | bool] = Field(default_factory=dict)
    tags: dict[TagKey, TagValue] = Field(default_factory=dict)
    datasets: list[DatasetRefIn] = Field(default_factory=list, max_length=MAX_DATASETS)
    parents: list[ParentIn] = Field(default_factory=list, max_length=MAX_PARENTS)


class VersionPatchIn(VersionMetadataIn):
    """The fields given replace the draft's; the others are kept."""


class ReasonIn(In):
    reason: Text(10_000) = ""


DIGEST_SEEN = Field(
    "",
    description="The version's content_digest as you reviewed it (GET the version). If the "
    "version changed since, the decision is refused with 409 and nothing is recorded.",
)


REVALIDATION = Field(
    False,
    description="True: a revalidation round of an approved version, on the same content "
    "(docs/approval-expiry.md). Approving renews the approval once the policy's quorum is "
    "reached in the round; rejecting rejects the version.",
)
REVALIDATION_DUE = (
    "True when the model's policy sets approval_valid_days and this approved version's "
    "approval is older (docs/approval-expiry.md)."
)
APPROVAL_EXPIRES_AT = (
    "When the approval stops being valid; null when approvals do not expire or the version "
    "is not approved."
)


class SignatureIn(In):
    """An electronic signature (docs/signatures.md), needed where the model's review policy
    requires signatures: a token alone cannot sign."""

    password: Text(1000) = Field(
        "",
        description="Your password, entered now (a wrong one counts as a failed sign-in and "
        "the sign-in lockout applies).",
    )
    meaning: Text(200) = Field(
        "", description="The meaning of your signature: one of the policy's list for the action."
    )


class RejectIn(SignatureIn):
    reason: Text(10_000)
    content_digest: Text(100) = DIGEST_SEEN
    revalidation: bool = REVALIDATION


class ApproveIn(SignatureIn):
    reason: Text(10_000) = ""
    content_digest: Text(100) = DIGEST_SEEN
    override_reason: Text(10_000) = Field(
        "", description="Needed (with the manage role) to approve despite failing gates."
    )
    revalidation: bool = REVALIDATION


class CommentIn(In):
    body: Text(20_000)
    metric: Text(250) = ""
    parent: Id | None = Field(None, description="The comment this one answers.")


class AliasSetIn(SignatureIn):
    version: Id
    note: Text(10_000) = ""


class AliasDeleteIn(SignatureIn):
    """The signature removing production or staging needs (the note stays in the query)."""


class RollbackIn(SignatureIn):
    reason: Text(10_000) = ""


class DatasetCreateIn(In):
    name: Text(200, 1)
    uri: Text(1000) = ""
    digest: Text(200) = ""
    row_count: int | None = Field(None, ge=0, le=2**63 - 1)
    description: Text(100_000) = ""


class DatasetPatchIn(In):
    uri: Text(1000) = None
    digest: Text(200) = None
    description: Text(100_000) = None
    team: Text(150) | None = Field(None, description="A team you belong to; null removes it.")


class GrantIn(In):
    roles: list[RoleName] = Field(min_length=1, max_length=5)


# ---------------------------------------------------------------------------------------------
# Answers


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None
    details: list[dict[str, Any]] | None = None
    gates: list[dict[str, Any]] | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


# Documented on every operation: the errors any of them may answer.
ERRORS = {(400, 401, 403, 404, 405, 409, 413, 422, 507): ErrorOut}


class Page(BaseModel):
    next: str | None = Field(description="The next page's URL, or null on the last page.")
    count: int


class MetricOut(BaseModel):
    name: str
    value: float
    split: str
    step: int | None = None  # the training step, for metrics taken from an MLflow run


class ModelOut(BaseModel):
    name: str
    slug: str
    description: str
    task: str
    visibility: str
    owner: str
    team: str | None
    tags: dict[str, str]
    latest_version: int | None
    version_count: int
    created_at: datetime
    updated_at: datetime
    url: str


class ModelDetailOut(ModelOut):
    your_roles: list[str]
    aliases: dict[str, int]
    versions_by_status: dict[str, int]


class ModelPage(Page):
    items: list[ModelOut]


class VersionSummaryOut(BaseModel):
    number: int
    status: str
    description: str
    framework: str
    framework_version: str
    created_by: str
    created_at: datetime
    submitted_at: datetime | None
    decided_at: datetime | None
    content_digest: str = Field(
        description="SHA-256 of the version's content manifest, recorded when it was submitted "
        "(empty for drafts). See .../manifest and docs/content-digest.md."
    )
    metrics: list[MetricOut]
    url: str


class VersionPage(Page):
    items: list[VersionSummaryOut]


class FileOut(BaseModel):
    path: str
    size: int
    sha256: str
    content_type: str
    created_at: datetime
    download_url: str


class FilePage(Page):
    items: list[FileOut]


class ReviewOut(BaseModel):
    reviewer: str
    decision: str
    reason: str
    override_reason: str
    created_at: datetime
    discarded: bool
    gates: list[dict[str, Any]]
    content_digest: str = Field(description="The content digest the decision covers.")
    round: int = Field(
        description="0: the review that decided the version; n: the n-th revalidation round."
    )
    via_token: str | None = Field(
        None,
        description="The API token that made this decision alone (the policy allows machine "
        "decisions): not a signature.",
    )


class SignatureOut(BaseModel):
    """An electronic signature's manifestation and how it stands (docs/signatures.md)."""

    printed_name: str = Field(description="The signer's full name at signing.")
    signer: str = Field(description="The signer's username.")
    signed_at: datetime = Field(description="The database's clock at signing (UTC).")
    meaning: str
    reason: str
    action: str = Field(description="approve, reject, promote, rollback or remove.")
    alias: str = Field(
        description="The alias moved or removed (promote, rollback, remove); empty for reviews."
    )
    content_digest: str = Field(description="The content digest the signature covers.")
    standing: str = Field(description="valid, withdrawn or superseded (shown all the same).")
    verifies: bool = Field(description="It matches the audit event written with it.")
    problems: list[str] = Field(description="Why it does not verify (empty when it does).")
    audit_seq: int = Field(description="The audit event written with the signature.")
    audit_hash: str


class SourceOut(BaseModel):
    run: str
    repository: str
    commit: str


class DatasetLinkOut(BaseModel):
    id: int
    name: str
    role: str


class ParentOut(BaseModel):
    hidden: bool = False
    deleted: bool = False
    model: str | None = None
    version: int | None = None
    relation: str


class VersionOut(VersionSummaryOut):
    model: str
    revalidation_due: bool = Field(description=REVALIDATION_DUE)
    approval_expires_at: datetime | None = Field(description=APPROVAL_EXPIRES_AT)
    python_version: str
    requirements: str
    signature: dict[str, Any] | None
    source: SourceOut
    params: dict[str, str]
    tags: dict[str, str]
    datasets: list[DatasetLinkOut]
    parents: list[ParentOut]
    submitted_by: str | None
    files: list[FileOut]
    aliases: list[str]
    reviews: list[ReviewOut]
    signatures: list[SignatureOut] = Field(
        description="Electronic signatures given on this version, oldest first."
    )


class ManifestOut(BaseModel):
    content_digest: str = Field(description="Recorded at submission (empty for drafts).")
    current_digest: str = Field(description="The digest of the content as it is now.")
    manifest: dict[str, Any]


class ApprovalOut(BaseModel):
    review: ReviewOut
    version: VersionOut


class LineageNodeOut(BaseModel):
    hidden: bool = False
    deleted: bool | None = None
    model: str | None = None
    number: int | None = None
    status: str | None = None
    note: str | None = None


class LineageDatasetOut(BaseModel):
    id: int
    name: str
    role: str
    uri: str
    digest: str


class LineageOut(BaseModel):
    model: str
    number: int
    datasets: list[LineageDatasetOut]
    ancestors: list[list[LineageNodeOut]] = Field(description="Generations, nearest first.")
    descendants: list[list[LineageNodeOut]]


class CommentOut(BaseModel):
    id: int
    author: str
    body: str
    metric: str
    parent: int | None
    created_at: datetime


class CommentPage(Page):
    items: list[CommentOut]


class AliasOut(BaseModel):
    alias: str
    version: int
    status: str
    protected: bool
    updated_at: datetime


class AliasListOut(BaseModel):
    items: list[AliasOut]
    next: str | None
    count: int


class AliasHistoryOut(BaseModel):
    alias: str
    kind: str
    version: int | None
    previous_version: int | None
    note: str
    assigned_by: str
    assigned_at: datetime
    via_token: str | None = Field(
        None, description="The API token that made this move alone: not a signature."
    )


class AliasHistoryPage(Page):
    items: list[AliasHistoryOut]


class ApprovalRecordOut(BaseModel):
    status: str
    content_digest: str = Field(description="The content the approval covers (sha256 manifest).")
    submitted_by: str | None
    submitted_at: datetime | None
    decided_at: datetime | None
    revalidation_due: bool = Field(description=REVALIDATION_DUE)
    approval_expires_at: datetime | None = Field(description=APPROVAL_EXPIRES_AT)
    reviews: list[ReviewOut]
    overrides: list[ReviewOut] = Field(description="Approvals given despite failing gates.")
    signatures: list[SignatureOut] = Field(
        description="Electronic signatures given on the version (approvals, alias moves)."
    )


class ResolveOut(BaseModel):
    model: str
    alias: str
    version: VersionOut
    approval: ApprovalRecordOut
    files: list[FileOut]


class AuditEventOut(BaseModel):
    seq: int
    created_at: datetime
    actor: str
    action: str
    model: str | None
    target_type: str
    target_id: str
    target_label: str
    before: Any
    after: Any
    reason: str
    ip_address: str | None
    hash: str


class AuditPage(Page):
    items: list[AuditEventOut]


class DatasetOut(BaseModel):
    id: int
    name: str
    uri: str
    digest: str
    row_count: int | None
    description: str
    created_by: str
    team: str | None = Field(description="The team that may correct it with its creator.")
    created_at: datetime
    url: str


class DatasetPage(Page):
    items: list[DatasetOut]


class DatasetVersionOut(BaseModel):
    model: str
    number: int
    status: str
    role: str


class DatasetVersionPage(BaseModel):
    """A page of a list that may hold 100,000 items: keyset cursors and no total."""

    items: list[DatasetVersionOut]
    next: str | None = Field(description="The next page's URL, or null on the last page.")
    previous: str | None = Field(description="The previous page's URL, or null on the first page.")


class DatasetDetailOut(DatasetOut):
    versions: DatasetVersionPage


class GrantOut(BaseModel):
    kind: str
    name: str
    roles: list[str] = Field(description="Every role held, implied ones included.")
    top_roles: list[str] = Field(description="The roles to show (not implied by another).")


class GrantListOut(BaseModel):
    items: list[GrantOut]
    next: str | None
    count: int


class FileUploadOut(BaseModel):
    path: str
    size: int
    sha256: str
    download_url: str
