"""Experiment tracking as MLflow training scripts use it: experiments, their runs (parameters,
metric history, tags, input datasets, output models), logged models and the files logged under
a run's or a logged model's artifact location.

Experiments are private to their creator unless shared (roles view/edit/manage, as for
registered models, kept as django-guardian object permissions in this app's own foreign-key
tables). A run and its logged models inherit their experiment's visibility; only their creator
(and superusers) may write to them. Experiment "0" (Default) is everyone's: runs in it are
visible to their creator and superusers only.
"""

from django.conf import settings
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

DEFAULT_EXPERIMENT_ID = 0


class Lifecycle(models.TextChoices):
    ACTIVE = "active"
    DELETED = "deleted"


class KeyValue(models.Model):
    """A key and its value, unique per owner (the subclass names the owner and the
    constraint): the shape MLflow gives tags and params of experiments, runs and logged models.
    Abstract, so each keeps its own table."""

    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        abstract = True
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class Experiment(models.Model):
    name = models.CharField(max_length=500, unique=True)
    lifecycle_stage = models.CharField(
        max_length=10, choices=Lifecycle.choices, default=Lifecycle.ACTIVE
    )
    # None only for experiment 0, which belongs to no one.
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="experiments",
    )
    creation_time = models.BigIntegerField()  # milliseconds, as MLflow counts
    last_update_time = models.BigIntegerField()

    class Meta:
        ordering = ["pk"]
        permissions = [
            ("edit_experiment", "Can start runs and log models in the experiment"),
            ("manage_experiment", "Can rename, delete, restore and share the experiment"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def artifact_location(self) -> str:
        return f"mlflow-artifacts:/{self.pk}"

    @property
    def is_default(self) -> bool:
        return self.pk == DEFAULT_EXPERIMENT_ID


class ExperimentUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Experiment, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "role of a user on an experiment"


class ExperimentGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Experiment, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        verbose_name = "role of a team on an experiment"


class ExperimentTag(KeyValue):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="tags")

    class Meta(KeyValue.Meta):
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="experiment_tag_unique_key")
        ]


class Run(models.Model):
    class Status(models.TextChoices):
        RUNNING = "RUNNING"
        SCHEDULED = "SCHEDULED"
        FINISHED = "FINISHED"
        FAILED = "FAILED"
        KILLED = "KILLED"

    id = models.CharField(max_length=32, primary_key=True)  # 32 hex digits; run_uuid == run_id
    experiment = models.ForeignKey(Experiment, on_delete=models.PROTECT, related_name="runs")
    name = models.CharField(max_length=250, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    start_time = models.BigIntegerField()
    end_time = models.BigIntegerField(null=True, blank=True)
    lifecycle_stage = models.CharField(
        max_length=10, choices=Lifecycle.choices, default=Lifecycle.ACTIVE
    )
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="runs"
    )

    class Meta:
        ordering = ["-start_time", "id"]
        indexes = [models.Index(fields=["experiment", "start_time"], name="run_experiment_idx")]

    def __str__(self) -> str:
        return self.name or self.id

    @property
    def artifact_uri(self) -> str:
        return f"mlflow-artifacts:/{self.experiment_id}/{self.id}/artifacts"


class RunParam(KeyValue):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="params")
    value = models.TextField()  # required (a tag's may be blank)

    class Meta(KeyValue.Meta):
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="run_param_unique_key")]


class RunTag(KeyValue):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags")

    class Meta(KeyValue.Meta):
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="run_tag_unique_key")]


class Metric(models.Model):
    """One logged value. As MLflow stores them: NaN as ``is_nan`` (value 0), ±infinity as the
    largest finite double of that sign."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metrics")
    key = models.CharField(max_length=250)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField(default=0)
    model_id = models.CharField(max_length=34, blank=True)  # a logged model of the run, or ""

    class Meta:
        ordering = ["run", "key", "step", "timestamp", "pk"]
        # In the order histories are read (MLflow's get-history, the run page's charts): a
        # chart probes it at evenly spaced steps instead of sorting every point.
        indexes = [
            models.Index(fields=["run", "key", "step", "timestamp"], name="metric_history_idx")
        ]

    def __str__(self) -> str:
        return f"{self.key}@{self.step}"


class LatestMetric(models.Model):
    """The latest value of each metric of a run (highest step, then timestamp, then value, as
    MLflow picks it) and how many points its history holds, kept up to date by the services
    so reads take one row per key (the run page's "N of M values drawn" counts nothing)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="latest_metrics")
    key = models.CharField(max_length=250)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField(default=0)
    history_count = models.PositiveBigIntegerField(default=0)  # the Metric rows of (run, key)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["run", "key"], name="latest_metric_unique_key")
        ]

    def __str__(self) -> str:
        return self.key


class RunInput(models.Model):
    """A dataset a run used; ``context`` is its ``mlflow.data.context`` tag (training, …)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="inputs")
    name = models.CharField(max_length=500)
    digest = models.CharField(max_length=36)
    source_type = models.CharField(max_length=36)
    source = models.TextField()
    schema = models.TextField(blank=True)
    profile = models.TextField(blank=True)
    context = models.CharField(max_length=500, blank=True)
    tags = models.JSONField(default=list)  # [{"key": …, "value": …}] as logged

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "name", "digest"], name="run_input_unique_dataset"
            )
        ]

    def __str__(self) -> str:
        return self.name


class LoggedModel(models.Model):
    class Status(models.TextChoices):
        PENDING = "LOGGED_MODEL_PENDING"
        READY = "LOGGED_MODEL_READY"
        FAILED = "LOGGED_MODEL_UPLOAD_FAILED"

    id = models.CharField(max_length=34, primary_key=True)  # "m-" + 32 hex digits
    experiment = models.ForeignKey(
        Experiment, on_delete=models.PROTECT, related_name="logged_models"
    )
    source_run = models.ForeignKey(
        Run, on_delete=models.PROTECT, null=True, blank=True, related_name="logged_models"
    )
    name = models.CharField(max_length=250)
    model_type = models.CharField(max_length=250, blank=True)
    status = models.CharField(max_length=30, choices=Status.choices, default=Status.PENDING)
    lifecycle_stage = models.CharField(
        max_length=10, choices=Lifecycle.choices, default=Lifecycle.ACTIVE
    )
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="logged_models"
    )
    creation_time = models.BigIntegerField()
    last_update_time = models.BigIntegerField()

    class Meta:
        ordering = ["-creation_time", "id"]

    def __str__(self) -> str:
        return self.id

    @property
    def artifact_uri(self) -> str:
        return f"mlflow-artifacts:/{self.experiment_id}/models/{self.id}/artifacts"


class LoggedModelParam(KeyValue):
    logged_model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="params")
    value = models.TextField()  # as RunParam

    class Meta(KeyValue.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["logged_model", "key"], name="logged_model_param_unique_key"
            )
        ]


class LoggedModelTag(KeyValue):
    logged_model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="tags")

    class Meta(KeyValue.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["logged_model", "key"], name="logged_model_tag_unique_key"
            )
        ]


class RunOutput(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="outputs")
    logged_model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="+")
    step = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["run", "logged_model"], name="run_output_unique_model")
        ]

    def __str__(self) -> str:
        return self.logged_model_id


class TrackedFile(models.Model):
    """A file logged under a run's or a logged model's artifact location, stored through the
    project's storage under a server-made key, with its size and digest (so a version can
    adopt the stored bytes without copying them)."""

    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, null=True, blank=True, related_name="files"
    )
    logged_model = models.ForeignKey(
        LoggedModel, on_delete=models.CASCADE, null=True, blank=True, related_name="files"
    )
    path = models.CharField(max_length=500)  # relative to the artifact location
    storage_key = models.CharField(max_length=300, unique=True, editable=False)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=200, default="application/octet-stream")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tracked_files"
    )
    uploaded_at = models.DateTimeField()

    class Meta:
        ordering = ["path"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(run__isnull=False, logged_model__isnull=True)
                | models.Q(run__isnull=True, logged_model__isnull=False),
                name="tracked_file_one_owner",
            ),
            models.UniqueConstraint(
                fields=["run", "path"],
                condition=models.Q(run__isnull=False),
                name="tracked_file_unique_run_path",
            ),
            models.UniqueConstraint(
                fields=["logged_model", "path"],
                condition=models.Q(logged_model__isnull=False),
                name="tracked_file_unique_model_path",
            ),
        ]

    def __str__(self) -> str:
        return self.path
