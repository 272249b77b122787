"""Files uploaded through the MLflow artifact proxy before any version exists.

The MLflow client uploads a model's files one PUT at a time and only then registers a version
whose ``source`` names the folder. Until then the files are *staged*: stored under server-made
keys and recorded here, either

- in the namespace of the model they were uploaded for (``model`` set, ``path`` relative to
  ``registry/<model>/``): visible to the model's editors; registering a version adopts them
  (the rows move to ``models_app.Artifact`` with the same keys and digests); or
- anywhere else in the proxy's namespace (``model`` empty, ``path`` from the namespace's root,
  e.g. ``team-x/uploads/abc/model.pkl``): an *upload* owned by its first uploader
  (``uploaded_by``), whom alone (and superusers) may see it. A version registered from it
  refers to the same stored bytes; the rows stay, so the owner may register the same source
  again (another version, another model), until they expire.

``manage.py sweep_orphans`` expires staged rows a day after their last upload (a file uploaded
again to the same path counts from then); their bytes go only when no version or run file
refers to them any more (``models_app.storage.release``).
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from models_app.models import RegisteredModel


class StagedArtifact(models.Model):
    # Empty for an upload outside registry/ (owned by ``uploaded_by``, its first uploader).
    model = models.ForeignKey(
        RegisteredModel,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="staged_artifacts",
    )
    # With a model, relative to registry/<model>/: "<upload id>/<file path>". Without, the
    # whole path in the proxy's namespace.
    path = models.CharField(max_length=500)
    # Built from server ids only (storage.new_storage_key), never from the client's file name.
    storage_key = models.CharField(max_length=300, unique=True, editable=False)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=200, default="application/octet-stream")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staged_artifacts"
    )
    created_at = models.DateTimeField(auto_now_add=True)  # first upload to this path
    # Latest upload to this path: what the expiry counts from.
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model_id", "path"]  # by the column: no join (FOR UPDATE needs none)
        constraints = [
            models.UniqueConstraint(fields=["model", "path"], name="staged_artifact_unique_path"),
            models.UniqueConstraint(
                fields=["path"],
                condition=models.Q(model__isnull=True),
                name="staged_upload_unique_path",
            ),
        ]
        indexes = [models.Index(fields=["uploaded_at"], name="staged_artifact_uploaded_idx")]

    def __str__(self) -> str:
        return f"registry/{self.model.slug}/{self.path}" if self.model_id else self.path
