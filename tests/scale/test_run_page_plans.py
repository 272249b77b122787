"""The plan of the run page's charts (tracking.selectors.metric_series) with a metric of
20,000 values: it probes the history index and never sorts or numbers every point (before,
a window over all of them took 610 ms at 100,000; PostgreSQL only, see conftest.py)."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import factories
from tracking import selectors, services
from tracking.models import LatestMetric, Metric

LONG = 20_000
SHORT = 150  # drawn whole
# No sort in the plan may take in more rows than the charts draw (at most CHART_POINTS + 1 of
# each of the three metrics); a long history is 100 times that.
MOST_ROWS_SORTED = 3 * (selectors.CHART_POINTS + 1)


@pytest.fixture
def run(db):
    """A run with a long history at steps 0, 1, …, a long one all at step 0 (timestamps 0,
    1, …) and a short one; another run with a long history of the same key."""
    user = factories.user("long-runner")
    experiment = services.experiment_create(actor=user, name="long-runs")
    run = services.run_create(actor=user, experiment=experiment)
    other = services.run_create(actor=user, experiment=experiment)
    histories = [
        (run, "loss", range(LONG), range(LONG)),
        (run, "lr", [0] * LONG, range(LONG)),
        (run, "auc", range(SHORT), range(SHORT)),
        (other, "loss", range(LONG), range(LONG)),
    ]
    for owner, key, steps, stamps in histories:
        Metric.objects.bulk_create(
            Metric(run=owner, key=key, value=1 / (1 + t), timestamp=t, step=s)
            for s, t in zip(steps, stamps, strict=True)
        )
        LatestMetric.objects.create(
            run=owner, key=key, value=0, timestamp=stamps[-1], step=0, history_count=len(stamps)
        )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Metric._meta.db_table}, {LatestMetric._meta.db_table}")
    return run


def _nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def _rows_in(node: dict) -> int:
    """The rows a node took in from its inputs, over all its executions."""
    inputs = [c for c in node.get("Plans", []) if c["Parent Relationship"] == "Outer"]
    return sum(c["Actual Rows"] * c["Actual Loops"] for c in inputs)


def test_the_run_pages_charts_never_sort_every_point(run):
    with CaptureQueriesContext(connection) as captured:
        charts = selectors.metric_series(run, ["auc", "loss", "lr"])
    assert [(c.total, len(c.samples)) for c in charts] == [
        (SHORT, SHORT),
        *[(LONG, selectors.CHART_POINTS + 1)] * 2,
    ]
    ((query),) = captured.captured_queries
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {query['sql']}")
        (plan,) = cursor.fetchone()[0]
    plan = plan if isinstance(plan, dict) else json.loads(plan)
    text = json.dumps(plan, indent=1)
    for node in _nodes(plan["Plan"]):
        kind = node["Node Type"]
        assert kind != "WindowAgg", f"a window over the history:\n{text}"
        if kind in ("Sort", "Incremental Sort"):
            assert _rows_in(node) <= MOST_ROWS_SORTED, f"a sort of every point:\n{text}"
        if kind == "Seq Scan":
            assert node["Relation Name"] != Metric._meta.db_table, f"a scan of all:\n{text}"
