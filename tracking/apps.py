import time

from django.apps import AppConfig
from django.apps import apps as installed_apps
from django.db.models.signals import post_migrate


def default_experiment(sender, using, apps=None, **kwargs) -> None:
    """Experiment 0 ("Default") after every migrate and every flush: MLflow clients that set no
    experiment put their runs there, and `manage.py flush` (also `seed_scale --reset`) empties
    the table that the data migration filled."""
    apps = apps or installed_apps  # flush sends no ``apps``: the installed models then
    try:
        Experiment = apps.get_model("tracking", "Experiment")
    except LookupError:  # migrated back before the table
        return
    stamp = int(time.time() * 1000)
    Experiment.objects.using(using).get_or_create(
        pk=0, defaults={"name": "Default", "creation_time": stamp, "last_update_time": stamp}
    )


class TrackingConfig(AppConfig):
    name = "tracking"
    verbose_name = "Experiment tracking"

    def ready(self) -> None:
        # start-up: both use the models, which are loaded only now
        from models_app import quotas, storage  # start-up
        from tracking.models import TrackedFile  # start-up
        from tracking.services import files  # start-up

        # Files logged to runs and logged models take storage: they count against the quota
        # of the user who uploaded them (they belong to no registered model yet).
        quotas.count(by_user=files.tracked_bytes_of_user, by_model=lambda model_id: 0)
        # A run's file may back versions registered from it: released only when no row names it.
        storage.refer(TrackedFile)
        post_migrate.connect(default_experiment, sender=self)
