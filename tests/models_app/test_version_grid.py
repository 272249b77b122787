"""The model page's grid of versions read a page at a time by cursor (?after= / ?before=): every
sort walks every version once, ties on a value included, forward and back; bad cursors are a
400; the page does the same number of queries at any depth and any size."""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals.services import alias_set
from models_app import summary, version_grid
from models_app.models import Metric, ModelVersion
from tests import factories
from tests.models_app.test_browse import bulk_versions

pytestmark = pytest.mark.django_db

SORTS = [
    "-number",
    "number",
    "-created_at",
    "created_at",
    "status",
    "-status",
    "-metric:accuracy@test",
    "metric:accuracy@test",
]
STATUSES = ["draft", "in_review", "approved", "rejected", "archived"]


@pytest.fixture
def model(owner):
    return factories.registered_model(owner, "grid-model")


@pytest.fixture
def tied(model, owner):
    """62 versions: values of accuracy in three tied groups (and 7 versions without it),
    dates in tied groups of four, statuses in turn: every order has long runs of ties."""
    versions = bulk_versions(model, owner, 62, metrics=())
    start = timezone.now() - datetime.timedelta(days=30)
    for v in versions:
        v.status = STATUSES[v.number % 5]
        v.created_at = start + datetime.timedelta(hours=v.number // 4)
    ModelVersion.objects.bulk_update(versions, ["status", "created_at"])
    Metric.objects.bulk_create(
        Metric(version=v, name="accuracy", split="test", value=[0.9, 0.5, 0.7][v.number % 3])
        for v in versions
        if v.number % 8
    )
    summary.recompute([model.pk])  # (the services keep the metric counts; rows written here do not)
    return model


def expected_order(model, sort: str) -> list[int]:
    """The whole order, computed in Python from the rows."""
    values = dict(
        Metric.objects.filter(version__model=model, name="accuracy", split="test").values_list(
            "version__number", "value"
        )
    )
    rows = list(model.versions.values_list("number", "created_at", "status"))
    descending = sort.startswith("-")
    field = sort.removeprefix("-")
    if field == "number":
        return sorted((n for n, _, _ in rows), reverse=descending)
    if field.startswith("metric:"):
        with_value = [n for n, _, _ in rows if n in values]
        without = sorted((n for n, _, _ in rows if n not in values), reverse=True)
        # by value (either way), ties newest first
        with_value.sort(key=lambda n: (values[n] if not descending else -values[n], -n))
        return with_value + without
    index = {"created_at": 1, "status": 2}[field]
    by_number = sorted(rows, key=lambda r: -r[0])  # ties: newest first
    return [r[0] for r in sorted(by_number, key=lambda r: r[index], reverse=descending)]


def walk(model, sort: str) -> tuple[list[int], list[int]]:
    """Every page forward by ``next`` cursors, then back from the last by ``previous``."""
    parsed = version_grid.parse_sort(sort)
    forward, page = [], version_grid.grid_page(model, parsed)
    assert page.previous_cursor == ""
    pages = [page]
    while True:
        forward += [v.number for v in page.versions]
        if not page.next_cursor:
            break
        page = version_grid.grid_page(model, parsed, after=page.next_cursor)
        pages.append(page)
    backward = [v.number for v in page.versions]
    while page.previous_cursor:
        page = version_grid.grid_page(model, parsed, before=page.previous_cursor)
        backward = [v.number for v in page.versions] + backward
    assert len(pages) == 3  # 62 versions: 25 + 25 + 12
    return forward, backward


@pytest.mark.parametrize("sort", SORTS)
def test_every_version_once_in_order_forward_and_back_despite_ties(tied, sort):
    forward, backward = walk(tied, sort)
    assert forward == expected_order(tied, sort)
    assert backward == forward


def test_metric_sort_puts_versions_without_the_metric_last_newest_first(tied):
    forward, _ = walk(tied, "-metric:accuracy@test")
    assert forward[-7:] == [56, 48, 40, 32, 24, 16, 8]
    first = version_grid.grid_page(tied, version_grid.parse_sort("-metric:accuracy@test"))
    values = [v.sort_value for v in first.versions]
    assert values == [0.9] * 18 + [0.7] * 7  # 18 versions tie on 0.9


def test_grid_pages_by_next_and_previous_links(client_for, owner, tied):
    c = client_for(owner)
    url = reverse("models_app:model_detail", args=[tied.slug])
    seen, response = [], c.get(url, {"sort": "-metric:accuracy@test"})
    while True:
        html = response.content.decode()
        seen += [int(n) for n in re.findall(r'/versions/(\d+)/">v\d+</a>', html)]
        link = re.search(r'<a href="\?([^"]*)" rel="next">', html)
        if not link:
            break
        response = c.get(url + "?" + link.group(1).replace("&amp;", "&"))
        assert response.status_code == 200
    assert seen == expected_order(tied, "-metric:accuracy@test")
    previous = re.search(r'<a href="\?([^"]*)" rel="prev">', html)
    assert "before=" in previous.group(1) and "sort=-metric" in previous.group(1)


@pytest.mark.parametrize(
    "cursor",
    ["garbage!", "WzEsMiwzXQ", "WyJ4Il0", "WyJuby1zdWNoLXN0YXR1cyIsIDNd", "W3RydWUsIDNd"],
)
def test_a_bad_cursor_is_a_400(client_for, owner, tied, cursor):
    url = reverse("models_app:model_detail", args=[tied.slug])
    for sort in ("-number", "status", "-metric:accuracy@test", "created_at"):
        response = client_for(owner).get(url, {"sort": sort, "after": cursor})
        assert response.status_code == 400, (sort, cursor)


def test_a_cursor_is_ignored_with_an_unknown_sort(client_for, owner, tied):
    url = reverse("models_app:model_detail", args=[tied.slug])
    response = client_for(owner).get(url, {"sort": "metric:nope", "after": "garbage!"})
    assert response.status_code == 200
    assert "Unknown sort" in response.content.decode()


def test_the_menu_offers_every_metric_and_one_past_its_cap_still_sorts(
    client_for, owner, model, monkeypatch
):
    """The sort menu offers the metrics any version carries, old ones included, up to its cap;
    a metric past the cap still sorts when asked for."""
    old = bulk_versions(model, owner, 3, metrics=("old_metric",))
    bulk_versions(model, owner, 3, metrics=("accuracy",))
    url = reverse("models_app:model_detail", args=[model.slug])
    html = client_for(owner).get(url).content.decode()
    assert "metric:old_metric@test" in html and "metric:accuracy@test" in html
    monkeypatch.setattr("models_app.views.browse.MAX_METRIC_SORTS", 1)  # by name: accuracy
    html = client_for(owner).get(url).content.decode()
    assert "metric:old_metric@test" not in html  # not in the menu
    html = client_for(owner).get(url, {"sort": "-metric:old_metric@test"}).content.decode()
    assert "Unknown sort" not in html
    numbers = re.findall(r'/versions/(\d+)/">v\d+</a>', html)
    assert numbers[:3] == [str(v.number) for v in reversed(old)]
    html = client_for(owner).get(url, {"sort": "-metric:never_logged"}).content.decode()
    assert "Unknown sort" in html


def test_the_last_page_looks_for_versions_without_the_metric_only_if_some_lack_it(
    client_for, owner, model
):
    """When the model's counts say every version has the metric, the last page of that sort
    does not check each version for it (an anti-join over every version of a large model);
    when one lacks it, the last page still shows it, after the others."""
    bulk_versions(model, owner, 30, metrics=("accuracy",))
    url = reverse("models_app:model_detail", args=[model.slug])
    c = client_for(owner)

    def last_page() -> tuple[list[int], str]:
        html = c.get(url, {"sort": "-metric:accuracy@test"}).content.decode()
        link = re.search(r'<a href="\?([^"]*)" rel="next">', html)
        with CaptureQueriesContext(connection) as queries:
            html = c.get(url + "?" + link.group(1).replace("&amp;", "&")).content.decode()
        numbers = [int(n) for n in re.findall(r'/versions/(\d+)/">v\d+</a>', html)]
        return numbers, " ".join(q["sql"] for q in queries.captured_queries)

    numbers, sql = last_page()
    assert numbers == [5, 4, 3, 2, 1]  # the lowest values: 0.500 to 0.504
    assert "NOT EXISTS" not in sql
    bulk_versions(model, owner, 1, metrics=())  # v31, without the metric
    numbers, sql = last_page()
    assert numbers == [5, 4, 3, 2, 1, 31]  # 31 versions: 25 + 6
    assert "NOT EXISTS" in sql


@pytest.mark.parametrize("sort", ["-number", "status", "-created_at", "-metric:accuracy@test"])
def test_model_page_queries_are_the_same_at_any_size_and_depth(
    client_for, owner, viewer, model, assert_constant_queries, sort
):
    factories.grant(viewer, model, "view")
    bulk_versions(model, owner, 60, metrics=("accuracy", "loss"))
    c = client_for(viewer)
    url = reverse("models_app:model_detail", args=[model.slug])
    parsed = version_grid.parse_sort(sort)
    first = version_grid.grid_page(model, parsed)
    second = version_grid.grid_page(model, parsed, after=first.next_cursor)

    def page(**cursor):
        response = c.get(url, {"sort": sort, **cursor})
        assert response.status_code == 200
        assert len(re.findall(r'/versions/(\d+)/">v\d+</a>', response.content.decode())) == 25

    def grow():
        bulk_versions(model, owner, 440, metrics=("accuracy", "loss"))

    first_page = assert_constant_queries(page, grow)
    deep_page = assert_constant_queries(lambda: page(after=first.next_cursor), grow)
    back_page = assert_constant_queries(lambda: page(before=second.previous_cursor), grow)
    assert first_page == deep_page == back_page <= 15


def test_model_page_queries_do_not_grow_with_its_aliases(
    client_for, owner, model, assert_constant_queries
):
    """Each alias links its version: the link's model comes with the page, not a query each."""
    versions = bulk_versions(model, owner, 4, metrics=("accuracy",))
    alias_set(actor=owner, model=model, name="candidate", version=versions[0])
    url = reverse("models_app:model_detail", args=[model.slug])
    c = client_for(owner)

    def page():
        response = c.get(url)
        assert response.status_code == 200
        assert response.content.decode().count('/versions/1/">v1</a>') >= 1

    def grow():
        for i, v in enumerate(versions[1:]):
            alias_set(actor=owner, model=model, name=f"shadow-{i}", version=v)

    assert_constant_queries(page, grow)
