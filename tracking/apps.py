from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "tracking"
    verbose_name = "Experiment tracking"

    def ready(self) -> None:
        # start-up: both use the models, which are loaded only now
        from models_app import quotas  # start-up
        from tracking.services import files  # start-up

        # Files logged to runs and logged models take storage: they count against the quota
        # of the user who uploaded them (they belong to no registered model yet).
        quotas.count(by_user=files.tracked_bytes_of_user, by_model=lambda model_id: 0)
