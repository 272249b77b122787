"""The plans of the big model's page, its CSV export and a dataset's page, at a size where a
sequential scan costs more than an index walk: none of them reads the whole versions, metrics
or dataset-link table (PostgreSQL only; see conftest.py)."""

import re

import pytest
from django.contrib.auth.models import User

from core import keyset
from models_app import selectors, version_grid
from models_app.models import Dataset, Metric, ModelVersion, RegisteredModel, VersionDataset
from models_app.views import browse, datasets
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


@pytest.mark.parametrize(
    ("username", "dataset_name"),
    [
        (loader.ADMIN, loader.BIG_TRAIN),
        (loader.ADMIN, loader.HOLDOUT),
        (loader.REVIEWER, loader.HOLDOUT),
        # Not the reviewer on the big model's training set: they see none of its 5,000
        # links, so every plan checks all of them, and at this size (a quarter of the
        # versions table) PostgreSQL rightly hashes the table instead of 5,000 probes.
    ],
)
def test_a_datasets_page_reads_the_link_index_first(scale, username, dataset_name):
    user = User.objects.get(username=username)
    links = selectors.dataset_links(user, Dataset.objects.get(name=dataset_name))
    first_page = explain(links[:25])
    assert_no_full_scans(first_page)
    assert "version_dataset_page_idx" in first_page, first_page
    # A deep page as the page's Next link asks for it (the view reads the page's links alone,
    # then their versions by key): after a cursor, no OFFSET, from an index of the links.
    keys = datasets.LINK_KEYS
    middle = links[links.count() // 2]  # (found by OFFSET here, once: the cursor a Next link holds)
    cursor = [getattr(middle, k) for k, _ in keys]
    deep_links = links.select_related(None).filter(keyset.beyond(keys, cursor))
    deep_links = deep_links.order_by(*keyset.ordering(keys))[:26]
    assert "OFFSET" not in str(deep_links.query)
    deep_page = explain(deep_links)
    assert_no_full_scans(deep_page)
    # (The link index, or for the big model's set, a quarter of this small table and its
    # versions numbered in a row, the index on the version key: both seek to the cursor; for
    # the few links left past the middle of a small set, a bitmap of the link index.)
    table = VersionDataset._meta.db_table
    index_read = (
        rf"Index (Only )?Scan (Backward )?using \S+ on {table}\b"
        r"|Bitmap Index Scan on version_dataset_page_idx"
    )
    assert re.search(index_read, deep_page), deep_page
    if dataset_name == loader.HOLDOUT:
        # (The big model's training set is a quarter of this small link table, which a
        # count rightly scans whole; the holdout set is 1 % of it, as datasets are in a
        # registry of a million versions.)
        query, params = links.order_by().values("pk").query.sql_with_params()
        count = explain(f"SELECT COUNT(*) FROM ({query}) AS links", params)  # noqa: S608
        assert_no_full_scans(count)
