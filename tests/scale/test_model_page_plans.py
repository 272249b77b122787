"""The plans of the big model's page, its CSV export and a dataset's page, at a size where a
sequential scan costs more than an index walk: none of them reads the whole versions, metrics
or dataset-link table (PostgreSQL only; see conftest.py)."""

import re

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from models_app import selectors, version_grid
from models_app.access import visible_models
from models_app.models import Dataset, Metric, ModelVersion, RegisteredModel, VersionDataset
from models_app.views import browse
from registry_site.demo import scale as loader
from tests.scale.plans import assert_no_seq_scan, explain

TABLES = (ModelVersion, Metric, VersionDataset)


def assert_no_full_scans(plan: str) -> None:
    for table in TABLES:
        assert_no_seq_scan(plan, table)


@pytest.fixture
def big(scale) -> RegisteredModel:
    return RegisteredModel.objects.get(name=scale.big_model)


@pytest.fixture
def metric_key(big) -> tuple[str, str]:
    return Metric.objects.filter(version__model=big).values_list("name", "split").first()


@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize(
    ("cursor", "backward"),
    [(None, False), ("value", False), ("value", True), ("none", False), ("none", True)],
)
def test_the_big_models_metric_sort_reads_the_metric_index(
    big, metric_key, descending, cursor, backward
):
    name, split = metric_key
    sort = version_grid.parse_sort(f"{'-' if descending else ''}metric:{name}@{split}")
    middle = big.versions.order_by("number")[big.versions.count() // 2]
    value = Metric.objects.get(version=middle, name=name, split=split).value
    cursors = {None: None, "value": [value, middle.number], "none": [None, middle.number]}
    query, params = version_grid.metric_page_sql(big, sort, cursors[cursor], backward, 26)
    plan = explain(query, params)
    assert_no_full_scans(plan)
    if cursor != "none" or backward:  # a page that starts among the versions with the metric
        assert "metric_name_split_value_idx" in plan, plan


@pytest.mark.parametrize("sort", ["-number", "number", "-created_at", "status", "-status"])
@pytest.mark.parametrize("backward", [False, True])
def test_the_big_models_grid_reads_an_index_at_any_depth(big, sort, backward):
    parsed = version_grid.parse_sort(sort)
    middle = big.versions.order_by("number")[big.versions.count() // 2]
    values = {"number": [middle.number], "created_at": [middle.created_at, middle.number]}
    cursor = values.get(parsed.field, [middle.status, middle.number])
    for c in (None, cursor):
        query = version_grid._field_sorted(big.versions.for_grid(), parsed, c, backward)
        assert_no_full_scans(explain(query))


def test_the_big_models_csv_reads_a_chunk_at_a_time(big, monkeypatch):
    # A chunk is 2,000 of 1.1 million versions in production; here 50 of 20,000 is the same
    # kind of fraction (2,000 would be a tenth of this small table, worth a scan).
    monkeypatch.setattr(browse, "CSV_CHUNK", 50)
    (rows, metrics), *_ = browse._numbered_chunks(big, "created_by__username")
    keys = metrics.order_by().values_list("name", "split").distinct()
    values = metrics.order_by().values_list("version_id", "name", "split", "value")
    chunk = big.versions.filter(number__gt=rows[-1][1]).order_by("number")[:50]
    for query in (keys, values, chunk.values_list("pk", "number", "created_by__username")):
        assert_no_full_scans(explain(query))


def _sees_no_big_model(big) -> User:
    """An author of the seed who may not view the big model (nor its training set's links)."""
    authors = User.objects.filter(username__startswith=loader.USER_PREFIX).order_by("pk")
    return next(u for u in authors if not visible_models(u).filter(pk=big.pk).exists())


def _page_statements(user, dataset, **cursor) -> tuple[list, list[str]]:
    """A page of selectors.dataset_links_page (through which the dataset page and the JSON
    API's dataset read) and the statements it ran: the page's links, then their versions."""
    with CaptureQueriesContext(connection) as captured:
        page = selectors.dataset_links_page(user, dataset, size=25, **cursor)
    return page.rows, [q["sql"] for q in captured.captured_queries]


@pytest.mark.parametrize("dataset_name", [loader.BIG_TRAIN, loader.HOLDOUT])
@pytest.mark.parametrize("persona", ["admin", "reviewer", "stranger"])
def test_a_datasets_pages_read_the_link_indexes(scale, big, persona, dataset_name):
    """First, deep and last pages, as the page's Next and Previous links ask for them, for a
    superuser, a reviewer who sees 7 % of the models (the big one among them) and an author
    who does not see the big model: no plan reads the whole link or versions table, and the
    links are read from an index of theirs (before each link kept its model, the reviewer's
    pages looked up every link's version: 0.3-0.5 s at 1.1 million versions)."""
    dataset = Dataset.objects.get(name=dataset_name)
    user = {
        "admin": lambda: User.objects.get(username=loader.ADMIN),
        "reviewer": lambda: User.objects.get(username=loader.REVIEWER),
        "stranger": lambda: _sees_no_big_model(big),
    }[persona]()
    links = selectors.dataset_links(user, dataset)
    table = VersionDataset._meta.db_table
    # (One of the link indexes, or for the big model's set, a quarter of this small table
    # with its versions in a row, the index on the version key: each seeks to the cursor.)
    index_read = (
        rf"Index (Only )?Scan (Backward )?using \S+ on {table}\b"
        r"|Bitmap Index Scan on version_dataset_\w+"
    )
    pagings = [{}]
    if links.exists():
        middle = links[links.count() // 2]  # (found by OFFSET here, once: a cursor a link holds)
        cursor = [getattr(middle, k) for k, _ in selectors.LINK_KEYS]
        pagings += [{"after": cursor}, {"before": cursor}]
    else:  # the stranger and the big model's 5,000 links: every one is checked, none shown
        assert (persona, dataset_name) == ("stranger", loader.BIG_TRAIN)
    for paging in pagings:
        rows, statements = _page_statements(user, dataset, **paging)
        # (the ids of the models the user may view, but for a superuser; the page's links;
        # their versions, when there are any)
        assert len(statements) == (persona != "admin") + 1 + bool(rows)
        plans = [explain(sql) for sql in statements]
        for sql, plan in zip(statements, plans, strict=True):
            assert "OFFSET" not in sql
            assert_no_full_scans(plan)
        links_plan = plans[persona != "admin"]
        assert re.search(index_read, links_plan), links_plan
