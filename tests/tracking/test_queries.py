"""The tracking searches do the same number of queries for a few rows as for many."""

import pytest

from tracking import services
from tracking.services import DatasetIn, MetricIn

pytestmark = pytest.mark.django_db


def grow_runs(actor, experiment, count: int) -> None:
    """``count`` runs, each with metrics, params, tags, an input and a logged model output."""
    for i in range(count):
        run = services.run_create(actor=actor, experiment=experiment, tags=[("team", "fraud")])
        services.run_log_batch(
            actor=actor,
            run=run,
            metrics=[MetricIn("auc", 0.9, 1, 0), MetricIn("loss", 0.1, 1, 0)],
            params=[("alpha", str(i))],
        )
        services.run_log_inputs(
            actor=actor, run=run, datasets=[DatasetIn("claims", f"d{i}", "s3", "{}")]
        )
        model = services.logged_model_create(
            actor=actor, experiment=experiment, name="model", source_run=run,
            params=[("alpha", "1")], tags=[("k", "v")],
        )  # fmt: skip
        services.run_log_outputs(actor=actor, run=run, models=[(model.pk, 0)])
        services.run_log_batch(
            actor=actor, run=run, metrics=[MetricIn("auc", 0.9, 2, 1, model_id=model.pk)]
        )


@pytest.fixture
def experiment(scientist):
    experiment = services.experiment_create(actor=scientist, name="churn", tags=[("a", "b")])
    grow_runs(scientist, experiment, 2)
    return experiment


def test_runs_search_is_constant(caller, scientist, experiment, assert_constant_queries):
    me = caller(scientist)

    def request():
        answer = me.post("runs/search", {"experiment_ids": [str(experiment.pk)]})
        assert answer.status_code == 200

    count = assert_constant_queries(request, lambda: grow_runs(scientist, experiment, 8))
    assert (
        len(me.post("runs/search", {"experiment_ids": [str(experiment.pk)]}).json()["runs"]) == 10
    )
    assert count <= 11, count  # 9 when measured: session, user, experiment, runs, 5 prefetches


def test_logged_models_search_is_constant(caller, scientist, experiment, assert_constant_queries):
    me = caller(scientist)
    body = {"experiment_ids": [str(experiment.pk)], "filter": "name = 'model'"}

    def request():
        assert me.post("logged-models/search", body).status_code == 200

    count = assert_constant_queries(request, lambda: grow_runs(scientist, experiment, 8))
    found = me.post("logged-models/search", body).json()["models"]
    assert len(found) == 10 and found[0]["data"]["metrics"][0]["key"] == "auc"
    assert count <= 9, count  # 7 when measured


def test_experiments_search_is_constant(caller, scientist, assert_constant_queries):
    me = caller(scientist)
    made = iter(range(1000))

    def grow():
        for _ in range(10):
            services.experiment_create(actor=scientist, name=f"e{next(made)}", tags=[("t", "v")])

    def request():
        assert me.post("experiments/search", {}).status_code == 200

    count = assert_constant_queries(request, grow)
    assert len(me.post("experiments/search", {}).json()["experiments"]) == 11  # with Default
    assert count <= 6, count  # 4 when measured
