"""Reads of the tracking data that more than one interface needs (the MLflow API now, the
run page and registration from a run later): each in a constant number of queries."""

from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from core import sql
from models_app.access import visible_versions
from models_app.models import ModelVersion
from tracking.access import RUN_ID_LENGTH, visible_experiments, visible_items_q
from tracking.models import (
    DEFAULT_EXPERIMENT_ID,
    Experiment,
    LatestMetric,
    Lifecycle,
    LoggedModel,
    Metric,
    Run,
    RunInput,
    RunOutput,
    TrackedFile,
)


def experiments_with_tags(queryset: QuerySet[Experiment]) -> QuerySet[Experiment]:
    return queryset.prefetch_related("tags")


def runs_with_data(queryset: QuerySet[Run]) -> QuerySet[Run]:
    """Runs with their experiment, creator, latest metrics, params, tags, inputs and outputs
    (seven queries however many runs)."""
    return queryset.select_related("experiment", "creator").prefetch_related(
        Prefetch("latest_metrics", queryset=LatestMetric.objects.order_by("key")),
        "params",
        "tags",
        Prefetch("inputs", queryset=RunInput.objects.order_by("pk")),
        Prefetch("outputs", queryset=RunOutput.objects.order_by("pk")),
    )


def run_with_data(run: Run) -> Run:
    return runs_with_data(Run.objects.filter(pk=run.pk)).get()


def logged_models_with_data(queryset: QuerySet[LoggedModel]) -> QuerySet[LoggedModel]:
    return queryset.select_related("experiment").prefetch_related("params", "tags")


def logged_model_metrics(models: list[LoggedModel]) -> dict[str, list[Metric]]:
    """The metrics logged with each model's id (the latest per key and run), in one query."""
    by_model: dict[str, dict[tuple[str, str], Metric]] = {m.pk: {} for m in models}
    rows = Metric.objects.filter(model_id__in=list(by_model)).order_by("step", "timestamp", "pk")
    for metric in rows:
        by_model[metric.model_id][metric.run_id, metric.key] = metric
    return {model_id: list(found.values()) for model_id, found in by_model.items()}


def metric_history(run: Run, key: str, *, limit: int) -> list[Metric]:
    return list(Metric.objects.filter(run=run, key=key).order_by("step", "timestamp", "pk")[:limit])


def files_of(owner: Run | LoggedModel) -> QuerySet[TrackedFile]:
    if isinstance(owner, Run):
        return TrackedFile.objects.filter(run=owner)
    return TrackedFile.objects.filter(logged_model=owner)


# ---------------------------------------------------------------------------------------------
# The dashboard's pages (tracking/views): experiments, an experiment's runs, a run.

CHART_POINTS = 200  # at most this many points (and the last one) per metric chart
CHART_KEYS = 20  # charts for at most this many metrics of a run (the table lists them all)
RUN_METRIC_COLUMNS = 4  # latest metrics shown as columns of an experiment's runs


def experiments_for_list(user, *, deleted: bool = False) -> QuerySet[Experiment]:
    """The experiments the user may view (deleted ones only with ``deleted``), with their
    creator and the number of runs the user may see in each (in experiment 0, their own)."""
    runs = Run.objects.filter(experiment=OuterRef("pk"), lifecycle_stage=Lifecycle.ACTIVE)
    if not user.is_superuser:
        runs = runs.filter(~Q(experiment_id=DEFAULT_EXPERIMENT_ID) | Q(creator=user))
    count = runs.order_by().values("experiment").annotate(n=Count("*")).values("n")
    experiments = visible_experiments(user).select_related("creator")
    if not deleted:
        experiments = experiments.filter(lifecycle_stage=Lifecycle.ACTIVE)
    return experiments.annotate(run_count=Coalesce(Subquery(count, output_field=IntegerField()), 0))


def experiment_runs(user, experiment: Experiment, *, deleted: bool = False) -> QuerySet[Run]:
    """The runs of an experiment the user may view (it is one they may view), with creator."""
    runs = Run.objects.filter(visible_items_q(user, [experiment])).select_related("creator")
    if not deleted:
        runs = runs.filter(lifecycle_stage=Lifecycle.ACTIVE)
    return runs


def attach_metric_columns(runs: list[Run]) -> list[str]:
    """The first few metric keys (by name) logged by these runs, and each run's latest value
    of them as ``run.metric_cells`` (None where it has none): two queries however many."""
    ids = [run.pk for run in runs]
    keys = list(
        LatestMetric.objects.filter(run_id__in=ids)
        .order_by("key")
        .values_list("key", flat=True)
        .distinct()[:RUN_METRIC_COLUMNS]
    )
    found = {}
    if keys:
        for metric in LatestMetric.objects.filter(run_id__in=ids, key__in=keys):
            found[metric.run_id, metric.key] = metric
    for run in runs:
        run.metric_cells = [found.get((run.pk, key)) for key in keys]
    return keys


@dataclass(frozen=True)
class Sample:
    step: int
    value: float
    is_nan: bool


@dataclass(frozen=True)
class Series:
    key: str
    total: int  # points logged
    samples: list[Sample]  # at most CHART_POINTS + 1 of them, in step order


def metric_series(run: Run, keys: list[str], *, points: int = CHART_POINTS) -> list[Series]:
    """Each metric's history for a chart, in one query whose cost does not grow with it.

    A history of at most ``points`` + 1 values comes whole. A longer one comes as its first
    and last points and, for ``points`` steps spread evenly between its first and last step,
    the first point logged at or after each (fewer where steps are sparse): evenly spread
    over the steps, not the minimum and maximum of each stretch, so a spike between two
    samples may not show. Each is one probe of the (run, key, step, timestamp) index, as are
    the first and last step, so 100,000 values cost what 1,000 do (the number of values is
    not counted: LatestMetric.history_count, kept by the services). A history logged at one
    step (MLflow's default step is 0) is spread over its timestamps instead. Probes order by
    the index alone (step, timestamp), so among points logged at the same step and
    millisecond any one may be drawn."""
    if not keys:
        return []
    key, stamp = sql.quote("key"), sql.quote("timestamp")
    metric, latest = sql.table(Metric), sql.table(LatestMetric)
    where, params = sql.among(f"l.{key}", keys)
    n, whole = int(points), int(points) + 1  # (integers from here, written into the SQL)
    of_key = f"FROM {metric} m WHERE m.run_id = s.run_id AND m.{key} = s.k"  # s: one metric

    def spread(lo: str, hi: str) -> str:
        # lo + floor((hi - lo) * t.i / n), without the product overflowing a bigint
        return f"s.{lo} + (s.{hi} - s.{lo}) / {n} * t.i + (s.{hi} - s.{lo}) %% {n} * t.i / {n}"

    # (On PostgreSQL a LATERAL join in the index's order: it says how few rows each key has
    # and makes them an index range, where a plain join for a run holding most of the table's
    # rows may be planned as a scan of all of them.)
    history = f"SELECT m.id {of_key} ORDER BY m.step, m.{stamp} LIMIT {whole}"
    if connection.vendor == "postgresql":
        short = f"CROSS JOIN LATERAL ({history}) m"
    else:
        short = f"JOIN {metric} m ON m.run_id = s.run_id AND m.{key} = s.k"
    picked = sql.among_selected("m.id", "SELECT id FROM picks")
    rows = sql.fetch(
        "WITH RECURSIVE ticks(i) AS (SELECT 0 UNION ALL "  # noqa: S608 (names from metadata)
        f"SELECT i + 1 FROM ticks WHERE i < {n - 1}), "
        # the run's metrics are the rows of LatestMetric (one per key, with its number of
        # points: both kept by the services)
        f"named AS (SELECT l.run_id, l.{key} AS k, l.history_count AS n FROM {latest} l "
        f"WHERE l.run_id = %s AND {where}), "
        "bounds AS (SELECT s.run_id, s.k, s.n, "
        f"(SELECT MIN(m.step) {of_key}) AS lo, (SELECT MAX(m.step) {of_key}) AS hi "
        "FROM named s), "
        f"spans AS (SELECT s.*, (SELECT MIN(m.{stamp}) {of_key} AND m.step = s.lo) AS t0, "
        f"(SELECT MAX(m.{stamp}) {of_key} AND m.step = s.lo) AS t1 FROM bounds s), "
        "picks(id) AS ("
        # a short history: every point
        f"SELECT m.id FROM spans s {short} WHERE s.n <= {whole} "
        # a long one: its last point,
        f"UNION SELECT (SELECT m.id {of_key} "
        f"ORDER BY m.step DESC, m.{stamp} DESC LIMIT 1) "
        f"FROM spans s WHERE s.n > {whole} "
        # the first at or after each of n evenly spaced steps (t.i = 0: the first point),
        f"UNION SELECT (SELECT m.id {of_key} AND m.step >= {spread('lo', 'hi')} "
        f"ORDER BY m.step, m.{stamp} LIMIT 1) FROM spans s, ticks t "
        f"WHERE s.n > {whole} AND s.lo < s.hi "
        # or, all at one step, the first at or after each of n evenly spaced timestamps
        f"UNION SELECT (SELECT m.id {of_key} AND m.step = s.lo "
        f"AND m.{stamp} >= {spread('t0', 't1')} ORDER BY m.step, m.{stamp} LIMIT 1) "
        f"FROM spans s, ticks t WHERE s.n > {whole} AND s.lo = s.hi) "
        f"SELECT m.{key}, m.step, m.value, m.is_nan, (SELECT s.n FROM spans s WHERE s.k = m.{key}) "
        f"FROM {metric} m WHERE {picked} "
        f"ORDER BY m.{key}, m.step, m.{stamp}, m.id",
        [run.pk, *params],
    )
    by_key: dict[str, Series] = {}
    for k, step, value, is_nan, total in rows:
        series = by_key.setdefault(k, Series(k, total, []))
        series.samples.append(Sample(step, value, bool(is_nan)))
    return [by_key[k] for k in sorted(by_key)]


def run_logged_models(run: Run) -> list[LoggedModel]:
    """The logged models made from the run or output by it, with their files."""
    outputs = RunOutput.objects.filter(run=run).values("logged_model_id")
    return list(
        LoggedModel.objects.filter(Q(source_run=run) | Q(pk__in=outputs))
        .prefetch_related(Prefetch("files", queryset=TrackedFile.objects.order_by("path")))
        .order_by("creation_time", "id")
    )


def versions_from_run(user, run_id: str) -> QuerySet[ModelVersion]:
    """The versions registered from this run that the user may view, with their model."""
    return (
        visible_versions(user)
        .filter(source_run=run_id)
        .select_related("model")
        .order_by("model__name", "number")
    )


def run_exists(run_id: str) -> bool:
    """Whether a run has this id (a version's ``source_run`` may name one)."""
    return len(run_id) == RUN_ID_LENGTH and Run.objects.filter(pk=run_id).exists()
