from django.apps import AppConfig


class MlflowCompatConfig(AppConfig):
    name = "registry_site.mlflow_compat"
    label = "mlflow_compat"
    verbose_name = "MLflow-compatible registry API"

    def ready(self) -> None:
        # start-up: both use the models, which are loaded only now
        from models_app import quotas, storage  # start-up
        from registry_site.mlflow_compat import services  # start-up
        from registry_site.mlflow_compat.models import StagedArtifact  # start-up

        # Staged uploads take storage before any version adopts them: they count too (for the
        # model they are staged for: adopting them there adds nothing).
        quotas.count(
            by_user=services.staged_bytes_of_user,
            by_model=services.staged_bytes_of_model,
            model_rows=services.staged_for_model,
        )
        # A staged upload's bytes may back versions too: released only when no row names them.
        storage.refer(StagedArtifact)
