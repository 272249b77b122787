"""The catalogue: registered models, their numbered versions and everything a version carries."""

import math

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper
from django.urls import reverse
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from models_app.names import MAX_NAME_LENGTH

# Metrics where a smaller value is better unless the model says otherwise.
LOWER_IS_BETTER = {
    "loss", "log_loss", "logloss", "val_loss", "test_loss", "mse", "rmse", "mae", "mape",
    "error", "error_rate", "latency", "latency_ms", "latency_p50_ms", "latency_p95_ms",
    "latency_p99_ms", "inference_ms", "brier", "brier_score", "perplexity", "wer", "cer",
    "false_positive_rate", "fpr", "false_negative_rate", "fnr", "size_mb", "ece",
}  # fmt: skip


def default_higher_is_better(metric_name: str) -> bool:
    name = metric_name.lower()
    if name in LOWER_IS_BETTER:
        return False
    return not name.endswith(("_loss", "_error", "_ms", "_seconds", "_rmse", "_mae", "_mse"))


# What full-text search reads of a model (PostgreSQL): these columns, in this text search
# configuration; migration 0020's GIN index is on exactly this expression.
SEARCH_DOCUMENT = ("name", "description")
SEARCH_CONFIG = "english"


class RegisteredModelQuerySet(models.QuerySet):
    def with_summary(self):
        """Each model with what the lists show beside it (owner, team). The latest version's
        number and the per-status counts are columns of the model's row (models_app.summary
        keeps them), so no list reads the versions."""
        return self.select_related("owner", "team")

    def search(self, text: str):
        """Name, description, tag keys and values. Full-text on PostgreSQL (plus substring on
        name and tags, so partial names still match); substring elsewhere.

        On PostgreSQL the full-text part is a subquery on SEARCH_DOCUMENT, which the GIN index
        ``model_search_idx`` (migration 0020) is built on, so the documents are not computed
        for every model row; that index needs the configuration named (SEARCH_CONFIG, the
        server's default), as to_tsvector without one may not be indexed."""
        from django.db import connection

        tagged = ModelTag.objects.filter(Q(key__icontains=text) | Q(value__icontains=text))
        match = Q(name__icontains=text) | Q(pk__in=tagged.values("model"))
        if connection.vendor == "postgresql":
            from django.contrib.postgres.search import SearchQuery, SearchVector

            query = SearchQuery(text, search_type="websearch", config=SEARCH_CONFIG)
            found = (
                RegisteredModel.objects.alias(
                    document=SearchVector(*SEARCH_DOCUMENT, config=SEARCH_CONFIG)
                )
                .filter(document=query)
                .values("pk")
            )
            return self.filter(match | Q(pk__in=found))
        return self.filter(match | Q(description__icontains=text))

    def tagged(self, key: str, value: str | None = None):
        """Models with this tag key (and value, when given)."""
        tags = ModelTag.objects.filter(key=key)
        if value is not None:
            tags = tags.filter(value=value)
        return self.filter(pk__in=tags.values("model"))

    def with_framework(self, framework: str):
        """Models with a version whose framework is ``framework``, case aside (the model's
        ModelFramework rows, not its versions)."""
        named = ModelFramework.objects.filter(framework__iexact=framework)
        return self.filter(pk__in=named.values("model"))


class RegisteredModel(models.Model):
    class Task(models.TextChoices):
        CLASSIFICATION = "classification", "Classification"
        REGRESSION = "regression", "Regression"
        RANKING = "ranking", "Ranking"
        FORECASTING = "forecasting", "Forecasting"
        CLUSTERING = "clustering", "Clustering"
        ANOMALY_DETECTION = "anomaly_detection", "Anomaly detection"
        TEXT_GENERATION = "text_generation", "Text generation"
        OTHER = "other", "Other"

    class Visibility(models.TextChoices):
        PRIVATE = "private", "Private: only people and teams it is shared with"
        INTERNAL = "internal", "Internal: every signed-in user may view"

    name = models.CharField(max_length=MAX_NAME_LENGTH)
    # NFKC, case-folded, homoglyphs mapped, separators collapsed: see models_app.names.
    name_key = models.CharField(max_length=MAX_NAME_LENGTH * 2, unique=True, editable=False)
    slug = models.CharField(max_length=MAX_NAME_LENGTH * 2, unique=True, editable=False)
    description = models.TextField(blank=True, help_text="Markdown.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_models"
    )
    team = models.ForeignKey(
        Group, on_delete=models.SET_NULL, null=True, blank=True, related_name="models"
    )
    task = models.CharField(max_length=32, choices=Task.choices, default=Task.CLASSIFICATION)
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.PRIVATE
    )
    # Version numbers are never reused, even after a delete: the next one is kept here.
    next_version_number = models.PositiveIntegerField(default=1, editable=False)
    # The summary the lists sort and filter by, kept by the services that add, delete or move
    # versions (models_app.summary), in their transaction; check_invariants compares it with
    # the versions. latest_number: the highest number of an existing version, 0 without one.
    latest_number = models.PositiveIntegerField(default=0, editable=False)
    version_count = models.PositiveIntegerField(default=0, editable=False)
    draft_count = models.PositiveIntegerField(default=0, editable=False)
    in_review_count = models.PositiveIntegerField(default=0, editable=False)
    approved_count = models.PositiveIntegerField(default=0, editable=False)
    rejected_count = models.PositiveIntegerField(default=0, editable=False)
    archived_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RegisteredModelQuerySet.as_manager()

    class Meta:
        ordering = ["name_key"]
        verbose_name = "registered model"
        # One per sort of the model list (models_app.selectors.MODEL_SORTS; name_key has its
        # unique index), ending in the tie-breaker so a page seeks instead of sorting.
        indexes = [
            models.Index(F("updated_at").desc(), "name_key", name="model_updated_idx"),
            models.Index(F("created_at").desc(), "name_key", name="model_created_idx"),
            models.Index(F("latest_number").desc(), "name_key", name="model_latest_idx"),
        ]
        permissions = [
            ("edit_registeredmodel", "Can register and edit versions"),
            ("review_registeredmodel", "Can approve or reject versions"),
            ("promote_registeredmodel", "Can move protected aliases and roll back"),
            ("manage_registeredmodel", "Can change settings, sharing and delete"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("models_app:model_detail", args=[self.slug])

    def higher_is_better(self, metric_name: str, specs: dict[str, bool] | None = None) -> bool:
        if specs is None:
            specs = dict(self.metric_specs.values_list("name", "higher_is_better"))
        return specs.get(metric_name, default_higher_is_better(metric_name))


# Roles on a model (models_app.access) are guardian object permissions stored in these two
# tables, with a real foreign key to the model, instead of guardian's generic tables (content
# type + the model's id as text). Guardian finds them by the reverse relations of
# RegisteredModel (guardian.utils.get_user_obj_perms_model), so assign_perm, remove_perm and its
# other shortcuts read and write here; deleting a model deletes its grants.
class RegisteredModelUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "role of a user on a model"


class RegisteredModelGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        verbose_name = "role of a team on a model"


class ModelFramework(models.Model):
    """How many of a model's versions name this framework (exactly as written; none for an
    empty one): what the model list's framework filter reads instead of every version. Kept
    by the services that add, delete or edit versions (models_app.summary), in their
    transaction; check_invariants compares it with the versions."""

    model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="framework_counts"
    )
    framework = models.CharField(max_length=100)
    versions = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model", "framework"], name="model_framework_unique")
        ]
        # The filter matches case-insensitively (framework__iexact: UPPER(…) = UPPER(…) on
        # PostgreSQL).
        indexes = [models.Index(Upper("framework"), "model", name="model_framework_upper_idx")]

    def __str__(self) -> str:
        return f"{self.framework} ×{self.versions}"


class ModelMetricKey(models.Model):
    """How many of a model's versions carry a metric (name and split): the model page's sort
    menu, and whether a grid sorted by the metric has versions without it to show last, read
    from here instead of every version's metrics. Kept by the services that add, delete or
    edit versions (models_app.summary), in their transaction; check_invariants compares it
    with the metrics."""

    model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="metric_counts"
    )
    name = models.CharField(max_length=250)
    split = models.CharField(max_length=100, blank=True)
    versions = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model", "name", "split"], name="model_metric_key_unique"
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.name}@{self.split} ×{self.versions}"
            if self.split
            else f"{self.name} ×{self.versions}"
        )


class ModelTag(models.Model):
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.CharField(max_length=5000, blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["model", "key"], name="model_tag_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class MetricSpec(models.Model):
    """A model's declaration of a metric's direction (and later, its review thresholds)."""

    model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="metric_specs"
    )
    name = models.CharField(max_length=250)
    higher_is_better = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["model", "name"], name="metric_spec_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({'higher' if self.higher_is_better else 'lower'} is better)"


class ModelVersionQuerySet(models.QuerySet):
    def for_grid(self):
        return self.select_related("created_by").prefetch_related("metrics")


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        ARCHIVED = "archived", "Archived"

    # No index of its own: (model, number) and (model, status, number) start with it.
    model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="versions", db_index=False
    )
    number = models.PositiveIntegerField(editable=False)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.DRAFT, editable=False
    )
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="registered_versions"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    framework = models.CharField(max_length=100, blank=True)
    framework_version = models.CharField(max_length=50, blank=True)
    python_version = models.CharField(max_length=20, blank=True)
    requirements = models.TextField(blank=True, help_text="requirements.txt as given.")
    signature = models.JSONField(null=True, blank=True)

    # Set by the approvals workflow: who sent the version to review (they may not approve it).
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="submitted_versions",
        editable=False,
    )
    submitted_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When last approved, rejected, or revalidated: for an approved version, the time its
    # approval counts from (approvals/expiry.py).
    decided_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The revalidation rounds completed: reviews of round ``review_round + 1`` are the next one.
    review_round = models.PositiveSmallIntegerField(default=0, editable=False)
    # Set when ``manage.py mark_revalidation_due`` recorded ``version.revalidation_due`` for
    # the current approval; cleared when the approval is renewed, so each approval fires once.
    revalidation_marked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # SHA-256 of the content manifest (models_app/digest.py), recorded when submitted.
    content_digest = models.CharField(max_length=71, blank=True, editable=False)

    source_run = models.CharField("training run", max_length=500, blank=True)
    # The MLflow logged model whose files the version was registered from (its id, "m-…":
    # MLflow 3's ModelVersion.model_id), set once at registration. Not a foreign key: the
    # catalogue imports nothing of tracking, and the version outlives the logged model.
    source_model = models.CharField("logged model", max_length=64, blank=True, editable=False)
    source_repository = models.CharField("code repository", max_length=500, blank=True)
    source_commit = models.CharField("commit", max_length=64, blank=True)

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        # By the model's id, not "model" (its name, through a join), so per-model queries
        # read the (model, number) index in order instead of sorting every version.
        ordering = ["model_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["model", "number"], name="version_unique_number"),
        ]
        indexes = [
            models.Index(fields=["status"], name="version_status_idx"),
            # The model page's grid sorted by date (the number breaks ties).
            models.Index(fields=["model", "created_at"], name="version_model_created_idx"),
            # The newest version of a model in a state (MLflow's latest_versions): one probe.
            models.Index(fields=["model", "status", "-number"], name="version_model_status_idx"),
            # The dashboard's latest versions.
            models.Index(fields=["created_at", "id"], name="version_created_idx"),
            # The reviews inbox: what waits, oldest first; what I submitted, newest first; the
            # badge's "not my own" (models_app.summary counts the rest).
            models.Index(
                fields=["submitted_at", "id"],
                name="version_in_review_idx",
                condition=Q(status="in_review"),
            ),
            models.Index(fields=["submitted_by", "-submitted_at"], name="version_submitter_idx"),
            # The badge: which of a reviewer's reviewed versions are in review, of which model
            # and whose, from the index alone (approvals.selectors.waiting_count).
            models.Index(
                fields=["id", "model", "created_by", "submitted_by"],
                name="version_in_review_key_idx",
                condition=Q(status="in_review"),
            ),
            models.Index(
                fields=["created_by"],
                name="version_review_author_idx",
                condition=Q(status="in_review"),
            ),
            # The versions trained by a run (the run page, and who may open it through them).
            models.Index(fields=["source_run"], name="version_source_run_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.number}"

    def get_absolute_url(self) -> str:
        return reverse("models_app:version_detail", args=[self.model.slug, self.number])

    @property
    def is_editable(self) -> bool:
        """Files and metadata may change only while a version is a draft."""
        return self.status == self.Status.DRAFT

    def metric_map(self) -> dict[tuple[str, str], float]:
        return {(m.name, m.split): m.value for m in self.metrics.all()}


class VersionContributor(models.Model):
    """Someone who changed a version's content (files, metadata, card) while it was a draft.
    Contributors may not review it (separation of duties)."""

    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="contributors", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="contributions"
    )
    first_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "user"], name="contributor_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.version_id}"


class VersionTag(models.Model):
    # (No index of its own on version, here and below: the unique index starts with it.)
    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="tags", db_index=False
    )
    key = models.CharField(max_length=250)
    value = models.CharField(max_length=5000, blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["version", "key"], name="version_tag_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class Metric(models.Model):
    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="metrics", db_index=False
    )
    name = models.CharField(max_length=250)
    value = models.FloatField()
    split = models.CharField(max_length=100, blank=True, help_text="e.g. test, validation")
    # The training step the value was logged at, when it came from a run (MLflow's latest
    # value of the metric); empty when given without one.
    step = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["name", "split"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "name", "split"], name="metric_unique_name_split"
            ),
        ]
        indexes = [
            # The model page's grid sorted by a metric reads this in order and stops after a
            # page (models_app.version_grid), instead of every version's value; with the
            # version in it, from the index alone once VACUUM has marked the pages visible.
            models.Index(
                fields=["name", "split", "value", "version"], name="metric_name_split_value_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}{f' ({self.split})' if self.split else ''} = {self.value}"

    def clean(self):
        if not math.isfinite(self.value):
            raise ValidationError({"value": "Metric values must be finite numbers."})

    @property
    def label(self) -> str:
        return f"{self.name} ({self.split})" if self.split else self.name


class Param(models.Model):
    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="params", db_index=False
    )
    key = models.CharField(max_length=250)
    value = models.CharField(max_length=6000, blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["version", "key"], name="param_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class Dependency(models.Model):
    """One parsed requirement, so two versions' dependencies can be diffed."""

    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="dependencies", db_index=False
    )
    name = models.CharField(max_length=200)
    specifier = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["version", "name"], name="dependency_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name}{self.specifier}"


class Dataset(models.Model):
    name = models.CharField(max_length=200, unique=True)
    uri = models.CharField("URI", max_length=1000, blank=True)
    digest = models.CharField(max_length=200, blank=True, help_text="e.g. sha256:…")
    row_count = models.PositiveBigIntegerField(null=True, blank=True)
    description = models.TextField(blank=True)
    # The owner: who registered it, and the team (if any) that may correct it with them.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="datasets"
    )
    team = models.ForeignKey(
        Group, on_delete=models.SET_NULL, null=True, blank=True, related_name="datasets"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("models_app:dataset_detail", args=[self.pk])


class VersionDataset(models.Model):
    class Role(models.TextChoices):
        TRAIN = "train", "Training"
        VALIDATION = "validation", "Validation"
        TEST = "test", "Test"

    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="dataset_links"
    )
    # No index of its own: (dataset, version, role) starts with it.
    dataset = models.ForeignKey(
        Dataset, on_delete=models.PROTECT, related_name="version_links", db_index=False
    )
    # The version's model, kept on the link (set by whoever writes it; check_invariants
    # compares): "this dataset's links in the models the user may view" is then read from the
    # link index alone, without looking up each link's version (100,000 of them for a big
    # dataset). A version never changes model.
    model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.TRAIN)

    class Meta:
        ordering = ["role", "dataset__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "dataset", "role"], name="version_dataset_unique_role"
            ),
        ]
        indexes = [
            # A dataset's page: its newest versions first, one page at a time, before any join.
            models.Index(fields=["dataset", "-version", "role"], name="version_dataset_page_idx"),
            # A few models' links to a dataset, newest first; the model leads, so that it also
            # finds a model's links when the model is deleted (the key's check and cascade).
            models.Index(
                fields=["model", "dataset", "-version", "role"], name="version_dataset_model_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.version} {self.role} {self.dataset}"


class VersionParent(models.Model):
    class Relation(models.TextChoices):
        FINE_TUNED = "fine_tuned", "Fine-tuned from"
        RETRAINED = "retrained", "Retrained from"
        DISTILLED = "distilled", "Distilled from"

    child = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="parent_links")
    # A parent's owners may delete it (a draft, or its whole model) whoever links to it: the
    # link stays, without the key, keeping the parent's model name and number as alias
    # history does. Who may read that name is decided where links are shown
    # (models_app.selectors.version_links).
    parent = models.ForeignKey(
        ModelVersion,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="child_links",
    )
    parent_model_name = models.CharField(max_length=MAX_NAME_LENGTH, editable=False)
    parent_number = models.PositiveIntegerField(editable=False)
    # Versions never move between models: whether the parent was the child's model's own is
    # known for good when the link is made.
    parent_in_child_model = models.BooleanField(default=False, editable=False)
    relation = models.CharField(max_length=16, choices=Relation.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["child", "parent"], name="version_parent_unique"),
            models.CheckConstraint(
                condition=~Q(child=models.F("parent")), name="version_parent_not_self"
            ),
        ]

    def __str__(self) -> str:
        parent = self.parent or f"{self.parent_model_name} v{self.parent_number} (deleted)"
        return f"{self.child} {self.get_relation_display().lower()} {parent}"

    @classmethod
    def linking(cls, child: ModelVersion, parent: ModelVersion, relation: str) -> "VersionParent":
        """A new (unsaved) link, with the parent's name and number kept for when it is gone."""
        return cls(
            child=child,
            parent=parent,
            parent_model_name=parent.model.name,
            parent_number=parent.number,
            parent_in_child_model=parent.model_id == child.model_id,
            relation=relation,
        )

    @property
    def parent_deleted(self) -> bool:
        return self.parent_id is None

    @property
    def parent_label(self) -> str:
        """The parent's "model vN" as kept on the link (also once it is deleted). Show it only
        where the viewer may know it: see selectors.version_links."""
        return f"{self.parent_model_name} v{self.parent_number}"


class Artifact(models.Model):
    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="artifacts", db_index=False
    )
    path = models.CharField(max_length=255, help_text="Relative path inside the version.")
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=200, default="application/octet-stream")
    # Built from server-generated ids only, never from the client's file name. Not unique: the
    # same stored bytes may back several versions (registered twice from one run or upload) and
    # the tracked file they came from; bytes are deleted only when no row refers to them.
    storage_key = models.CharField(max_length=300, db_index=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Whose storage quota the file counts against (models_app.quotas): who uploaded it.
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="uploaded_artifacts",
        editable=False,
    )
    # When the file was written to storage (before this row was committed; from the staged
    # upload for adopted files). Empty: stored before this was recorded.
    stored_at = models.DateTimeField(null=True, blank=True, editable=False)
    # What models_app.inspection read from the file's headers on upload (never executing it).
    # An empty format: registered before inspection existed.
    format = models.CharField(max_length=40, blank=True, editable=False)
    inspection = models.JSONField(default=dict, blank=True, editable=False)
    findings = models.JSONField(default=list, blank=True, editable=False)
    dangerous = models.BooleanField(
        default=False, editable=False, help_text="Loading the file runs dangerous code."
    )

    class Meta:
        ordering = ["path"]
        constraints = [
            models.UniqueConstraint(fields=["version", "path"], name="artifact_unique_path"),
        ]

    def __str__(self) -> str:
        return self.path

    def get_absolute_url(self) -> str:
        return reverse(
            "models_app:artifact_download",
            args=[self.version.model.slug, self.version.number, self.path],
        )

    @property
    def executes_code(self) -> bool:
        return bool((self.inspection or {}).get("executes_code"))

    @property
    def danger_findings(self) -> list[str]:
        return [f["message"] for f in self.findings or [] if f.get("level") == "danger"]

    @property
    def unsafe_reasons(self) -> list[str]:
        """Why loading this file may run code nobody checked (empty when it was checked): a
        dangerous import, an import off the allowlist, or a file that could not be verified.
        See docs/inspection.md."""
        summary = self.inspection or {}
        reasons = self.danger_findings if self.dangerous else []
        if self.dangerous and not reasons:
            reasons = ["dangerous"]
        reasons += [str(r) for r in summary.get("fails_gate") or [] if str(r) not in reasons]
        if reasons:
            return reasons
        if not self.format:
            return ["Not verified: registered before files were inspected."]
        if summary.get("executes_code") and not summary.get("allowlist_checked"):
            return ["Not verified: inspected before imports were checked against the allowlist."]
        return []


class PendingKey(models.Model):
    """A storage key whose file is not (or no longer) matched by a committed row.

    ``store``: recorded, and committed, before the file is written; removed once the
    transaction that records the file committed or rolled back (``storage.settle``). While it
    is younger than the grace period, ``sweep_orphans`` leaves the file alone, however old the
    file looks (a moved temporary file keeps its time). A process killed in between leaves the
    row: the sweep removes file and row once the grace period is over.

    ``delete``: a file whose row was deleted but whose own deletion failed (storage down);
    ``sweep_orphans`` retries it at once."""

    class Kind(models.TextChoices):
        STORE = "store", "Being stored"
        DELETE = "delete", "To delete"

    key = models.CharField(max_length=300, unique=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.STORE)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["kind", "created_at"], name="pending_key_kind_idx")]

    def __str__(self) -> str:
        return f"{self.key} ({self.kind})"


# ---------------------------------------------------------------------------------------------
# Model cards


class CardSection(models.TextChoices):
    """The structured sections of a model card, in the order a reader expects them."""

    INTENDED_USE = "intended_use", "Intended use"
    OUT_OF_SCOPE = "out_of_scope", "Out-of-scope uses"
    TRAINING_DATA = "training_data", "Training data"
    EVALUATION = "evaluation", "Evaluation data and results"
    ETHICS = "ethical_considerations", "Ethical considerations"
    CAVEATS = "caveats", "Caveats and recommendations"


class ModelCard(models.Model):
    """A version's documentation: editable while the version is a draft, frozen afterwards."""

    version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="card")
    intended_use = models.TextField(blank=True)
    out_of_scope = models.TextField(blank=True)
    training_data = models.TextField(blank=True)
    evaluation = models.TextField(blank=True)
    ethical_considerations = models.TextField(blank=True)
    caveats = models.TextField(blank=True)
    notes = models.TextField(blank=True, help_text="Free Markdown.")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "model card"

    def __str__(self) -> str:
        return f"Card of {self.version}"

    def sections(self) -> list[tuple[str, str, str]]:
        """(key, label, text) of every structured section, in order."""
        return [(key, label, getattr(self, key)) for key, label in CardSection.choices]

    def missing(self, required: list[str]) -> list[str]:
        """Labels of the required sections that are empty."""
        labels = dict(CardSection.choices)
        return [labels[k] for k in required if k in labels and not getattr(self, k).strip()]


class CardTemplate(models.Model):
    """Which card sections a model's versions must fill before approval (manage role)."""

    model = models.OneToOneField(
        RegisteredModel, on_delete=models.CASCADE, related_name="card_template"
    )
    required_sections = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Card template of {self.model}"

    def clean(self):
        unknown = set(self.required_sections) - set(CardSection.values)
        if unknown:
            raise ValidationError(
                {"required_sections": f"Unknown sections: {', '.join(sorted(unknown))}."}
            )


# ---------------------------------------------------------------------------------------------
# Names of deleted and renamed models


class ReservedName(models.Model):
    """A name a model had before it was deleted or renamed. Nobody may give it to another
    model (a deployment resolving ``name@alias`` would get the newcomer's files) until an
    administrator releases it; the model it belonged to may take it back when renamed."""

    class Why(models.TextChoices):
        DELETED = "deleted", "Deleted"
        RENAMED = "renamed", "Renamed"

    # The same key as RegisteredModel.name_key (models_app.names.name_key).
    name_key = models.CharField(max_length=MAX_NAME_LENGTH * 2, unique=True, editable=False)
    name = models.CharField(max_length=MAX_NAME_LENGTH, editable=False)
    why = models.CharField(max_length=16, choices=Why.choices, editable=False)
    # An id, not a foreign key: a deleted model's row is gone, its name stays reserved.
    model_id = models.PositiveBigIntegerField(editable=False)
    reserved_at = models.DateTimeField(auto_now_add=True)
    reserved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )

    class Meta:
        ordering = ["name_key"]
        verbose_name = "reserved model name"

    def __str__(self) -> str:
        return self.name
