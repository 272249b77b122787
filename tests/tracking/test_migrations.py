"""The tracking data migrations, on rows written at the schema before them (as
tests/models_app/test_migrations.py: a database outside a test transaction)."""

import pytest

from tests.models_app.test_migrations import migrate
from tracking.models import LatestMetric

pytestmark = pytest.mark.django_db(transaction=True)


def test_each_latest_metric_gets_the_number_of_values_its_history_holds():
    """0004: LatestMetric.history_count from the metrics already logged, per run and key
    (the same key in two runs counted apart; a latest value without history counts 0)."""
    try:
        apps = migrate([("tracking", "0003_metric_history_index")])
        user = apps.get_model("auth", "User").objects.create(username="runner")
        Run = apps.get_model("tracking", "Run")
        Metric = apps.get_model("tracking", "Metric")
        Latest = apps.get_model("tracking", "LatestMetric")
        for run_id, histories in (
            ("a" * 32, {"loss": 3, "auc": 1, "lr": 0}),
            ("b" * 32, {"loss": 2}),
        ):
            run = Run.objects.create(id=run_id, experiment_id=0, start_time=0, creator=user)
            for key, n in histories.items():
                Metric.objects.bulk_create(
                    Metric(run=run, key=key, value=s, timestamp=s, step=s) for s in range(n)
                )
                Latest.objects.create(run=run, key=key, value=0, timestamp=0, step=max(n - 1, 0))
        migrate()
        assert set(LatestMetric.objects.values_list("run_id", "key", "history_count")) == {
            ("a" * 32, "loss", 3), ("a" * 32, "auc", 1), ("a" * 32, "lr", 0), ("b" * 32, "loss", 2)
        }  # fmt: skip
    finally:
        migrate()
