"""The MLflow-compatible API: registered models, model versions, the artifact proxy."""
