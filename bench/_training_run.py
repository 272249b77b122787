"""One run of the training script of ../shared/mlflow-tracking.md, timed phase by phase.

Started by training_flow.py in a process of its own per run, with ``MLFLOW_TRACKING_URI`` (and
``MLFLOW_TRACKING_TOKEN`` for the registry) set. The script's calls are the page's, unchanged,
except that the alias points at the version this run registered (the page's ``"1"`` is the first
run's). Each phase is timed with ``perf_counter`` from the end of the imports; a phase that
raises is recorded as failed with the first line of its error and the next ones still run. The
last line on stdout is ``TIMINGS`` and a JSON object.
"""

import time

STARTED = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import mlflow  # noqa: E402
import mlflow.pyfunc  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

IMPORTED = time.perf_counter()

phases: dict[str, float] = {}  # ms
errors: dict[str, str] = {}


@contextmanager
def phase(name: str):
    began = time.perf_counter()
    try:
        yield
    except Exception as e:  # the benchmark reports a failing phase and goes on
        lines = str(e).strip().splitlines() or [type(e).__name__]
        errors[name] = f"{type(e).__name__}: {lines[0][:300]}"
    phases[name] = (time.perf_counter() - began) * 1000


class M(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input.sum(axis=1)


def main(rows: int) -> dict:
    rng = np.random.default_rng(17)
    df = pd.DataFrame(rng.normal(size=(rows, 10)), columns=[f"f{i}" for i in range(10)])
    client = mlflow.MlflowClient()
    info = run = registered_at = None

    start = time.perf_counter()
    with phase("set_experiment + start_run"):
        mlflow.set_experiment("fraud-training")
        run = mlflow.start_run(run_name="nightly")
    if run is not None:
        with run:  # the page's `with mlflow.start_run(run_name="nightly") as run:` block
            with phase("log params, metrics, tag, input"):
                mlflow.log_params({"alpha": 0.5, "max_depth": 6})
                mlflow.log_metric("auc", 0.91)
                mlflow.log_metric("auc", 0.93, step=1)
                mlflow.set_tag("team", "fraud")
                mlflow.log_input(
                    mlflow.data.from_pandas(
                        df, name="card-transactions-2026q1", source="s3://bank-data/q1.parquet"
                    ),
                    context="training",
                )
            with phase("log_model: upload + register"):
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=M(),
                    input_example=df,
                    registered_model_name="churn-predictor",
                )
                registered_at = time.perf_counter()
            ended_from = time.perf_counter()
        phases["end run"] = (time.perf_counter() - ended_from) * 1000
    version = str(getattr(info, "registered_model_version", None) or "1")
    with phase("set alias champion"):
        client.set_registered_model_alias("churn-predictor", "champion", version)
    with phase("load_model @champion + predict"):
        predicted = mlflow.pyfunc.load_model("models:/churn-predictor@champion").predict(df)
        if len(predicted) != rows:
            raise AssertionError(f"{len(predicted)} predictions for {rows} rows")
    with phase('register_model "runs:/…"'):
        if run is None:
            raise RuntimeError("no run")
        mlflow.register_model(f"runs:/{run.info.run_id}/model", "churn-predictor")
    finished = time.perf_counter()
    return {
        "imports_ms": (IMPORTED - STARTED) * 1000,
        "phases": phases,
        "errors": errors,
        "to_registered_ms": (registered_at - start) * 1000 if registered_at else None,
        "total_ms": (finished - start) * 1000,
    }


if __name__ == "__main__":
    result = main(int(sys.argv[1]))
    print("TIMINGS " + json.dumps(result), flush=True)
