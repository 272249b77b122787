from django.apps import AppConfig


class MlflowCompatConfig(AppConfig):
    name = "registry_site.mlflow_compat"
    label = "mlflow_compat"
    verbose_name = "MLflow-compatible registry API"
