"""The run page (``/runs/<id>/``) with one metric of 100,000 points, in process, timed.

Loads, into the database ``--database-url`` names (dropped and created anew), a run with one
metric of ``--points`` values (steps 0…n-1) and 3 more of 1,000, then VACUUM ANALYZEs (what
autovacuum does within minutes); then requests the run page ``--repeat`` times with Django's
test Client as a superuser, one request at a time after one warm-up, and prints p50/p95 of the
whole request in the process (ms) and the queries per request, p50/p95 of the chart query
alone (``tracking.selectors.metric_series`` for the 4 metrics) and its EXPLAIN (ANALYZE,
BUFFERS).

    .venv/bin/python bench/run_page.py \\
        --database-url postgres://postgres@127.0.0.1:5432/wt_runpage_bench
    .venv/bin/python bench/run_page.py --database-url ... --no-load   # measure again only
"""

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
USERNAME = "bench-run-page"
EXPERIMENT = "bench-run-page"
SMALL_METRICS = ("accuracy", "learning_rate", "val_loss")
SMALL_POINTS = 1_000
BIG_METRIC = "loss"
DATA_DIR = tempfile.TemporaryDirectory(prefix="bench-run-page-")  # removed at exit


def set_up(database_url: str, *, fresh: bool) -> None:
    """Django on the database, migrated; with ``fresh``, the database dropped and made anew."""
    server, name = database_url.rsplit("/", 1)
    if name in {"scale", "small", "test", "postgres"}:
        sys.exit(f"refusing to write to the shared database {name!r}")
    if fresh:
        for sql in (f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"):
            subprocess.run(["psql", f"{server}/postgres", "-qc", sql], check=True)
    os.environ.update(
        REGISTRY_DEV="1",
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="registry_site.settings",
        LOG_LEVEL="WARNING",
    )
    os.environ["REGISTRY_DATA_DIR"] = DATA_DIR.name  # collected static files, nothing else
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)  # the pages' manifest


def load(points: int):
    """The run described above; metrics are written in bulk, and the latest value of each as
    the services keep it."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from tracking import services
    from tracking.models import LatestMetric, Metric

    user, _ = get_user_model().objects.get_or_create(
        username=USERNAME, defaults={"is_superuser": True, "is_staff": True}
    )
    experiment = services.experiment_create(actor=user, name=EXPERIMENT)
    run = services.run_create(actor=user, experiment=experiment, name="long-training")
    start = 1_780_000_000_000
    histories = {BIG_METRIC: points, **dict.fromkeys(SMALL_METRICS, SMALL_POINTS)}
    for key, n in histories.items():
        rows = (
            Metric(run=run, key=key, value=1 / (1 + s) + 0.01 * math.sin(s), timestamp=start + s,
                   step=s)
            for s in range(n)
        )  # fmt: skip
        Metric.objects.bulk_create(rows, batch_size=5_000)
        last = n - 1
        LatestMetric.objects.create(
            run=run, key=key, value=1 / (1 + last) + 0.01 * math.sin(last),
            timestamp=start + last, step=last, history_count=n,
        )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    return run


def measure(run, repeat: int) -> dict:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tracking import selectors

    settings.ALLOWED_HOSTS = ["*"]
    client = Client()
    client.force_login(get_user_model().objects.get(username=USERNAME))
    url = f"/runs/{run.pk}/"
    assert client.get(url).status_code == 200  # warm-up: imports, connection, templates
    times, queries = [], set()
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
        queries.add(len(captured.captured_queries))
    keys = sorted([BIG_METRIC, *SMALL_METRICS])
    charts = []
    for _ in range(repeat):
        started = time.perf_counter()
        selectors.metric_series(run, keys)
        charts.append((time.perf_counter() - started) * 1000)
    return {**percentiles(times), "queries": sorted(queries), "chart": percentiles(charts)}


def percentiles(times: list[float]) -> dict:
    times = sorted(times)
    return {"p50": statistics.median(times), "p95": times[math.ceil(0.95 * len(times)) - 1]}


def explain_chart_query(run) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the one statement metric_series runs for the page."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tracking import selectors

    keys = sorted([BIG_METRIC, *SMALL_METRICS])
    with CaptureQueriesContext(connection) as captured:
        selectors.metric_series(run, keys)
    (query,) = captured.captured_queries
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query['sql']}")
        return "\n".join(row[0] for row in cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--no-load", action="store_true", help="measure the run loaded before")
    parser.add_argument("--no-explain", action="store_true")
    args = parser.parse_args()
    set_up(args.database_url, fresh=not args.no_load)
    if args.no_load:
        from tracking.models import Run

        run = Run.objects.get(experiment__name=EXPERIMENT)
    else:
        started = time.perf_counter()
        run = load(args.points)
        print(f"loaded {args.points:,} + 3 × {SMALL_POINTS:,} points in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    result = measure(run, args.repeat)
    print(
        f"run page, {args.repeat} requests: p50 {result['p50']:.1f} ms  "
        f"p95 {result['p95']:.1f} ms  queries {'/'.join(map(str, result['queries']))}"
    )
    chart = result["chart"]
    print(f"chart query (metric_series, 4 metrics): p50 {chart['p50']:.1f} ms  "
          f"p95 {chart['p95']:.1f} ms")  # fmt: skip
    if not args.no_explain:
        print(explain_chart_query(run))


if __name__ == "__main__":
    main()
