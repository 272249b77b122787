"""The model page's grid of versions read a page at a time by cursor (?after= / ?before=): every
sort walks every version once, ties on a value included, forward and back; bad cursors are a
400; the page does the same number of queries at any depth and any size."""

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from models_app import version_grid
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


def test_a_metric_only_old_versions_have_still_sorts(client_for, owner, model, monkeypatch):
    """The sort menu offers the recent versions' metrics; an older metric still sorts."""
    monkeypatch.setattr("models_app.views.browse.SORT_MENU_VERSIONS", 2)
    old = bulk_versions(model, owner, 3, metrics=("old_metric",))
    bulk_versions(model, owner, 3, metrics=("accuracy",))
    url = reverse("models_app:model_detail", args=[model.slug])
    html = client_for(owner).get(url).content.decode()
    assert "metric:old_metric" not in html  # not in the menu
    html = client_for(owner).get(url, {"sort": "-metric:old_metric@test"}).content.decode()
    assert "Unknown sort" not in html
    numbers = re.findall(r'/versions/(\d+)/">v\d+</a>', html)
    assert numbers[:3] == [str(v.number) for v in reversed(old)]


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
