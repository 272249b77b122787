"""The catalogue-wide pages read the models' summary columns, never every version: each query
the dashboard, the models list (each sort, filter and a deep page), the reviews inbox, the
navigation's badge and the JSON API run, as a superuser and as a reviewer who sees a few
percent of the models, is planned without a sequential scan of the versions table."""

import re

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals.models import Review
from approvals.selectors import versions_waiting_for, waiting_count
from core import keyset
from models_app import selectors
from models_app.models import ModelVersion
from registry_site.demo import scale as loader
from tests.scale.plans import assert_no_seq_scan, explain

LIST = "/models/"
PAGES = [
    "/",
    LIST,
    *(f"{LIST}?sort={sort}" for sort in selectors.MODEL_SORTS),
    *(f"{LIST}?status={status}" for status in ModelVersion.Status.values),
    f"{LIST}?sort=-latest&status=in_review&task=regression",
    f"{LIST}?q=scale-model-12",
    f"{LIST}?framework=xgboost",
    f"{LIST}?framework=XGBoost&sort=-latest",
    f"{LIST}?page=30",
    "/reviews/",
    "/api/v1/models",
    "/api/v1/models?sort=-latest&status=approved",
    "/api/v1/models?framework=xgboost",
]


@pytest.fixture(params=[loader.ADMIN, loader.REVIEWER])
def persona(request, scale, client):
    user = User.objects.get(username=request.param)
    client.force_login(user)
    return client, user


def _queries_of(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    # (The captured SQL has its parameters in it: a literal % is doubled to be sent again.)
    return [
        q["sql"].replace("%", "%%")
        for q in ctx.captured_queries
        if re.match(r"\s*(SELECT|WITH)", q["sql"], re.I)
    ]


@pytest.mark.parametrize("url", PAGES)
def test_no_page_scans_the_versions(persona, url):
    client, _ = persona
    for sql in _queries_of(client, url):
        assert_no_seq_scan(explain(sql), ModelVersion)


@pytest.mark.parametrize("sort", list(selectors.MODEL_SORTS))
def test_a_deep_page_of_each_sort_seeks_in_an_index(persona, sort):
    """Page after page through Next links: the last page's queries are planned like the
    first's, with the sort's index and no OFFSET."""
    client, user = persona
    keys = selectors.MODEL_SORTS[sort][1]
    models = selectors.model_list(user, sort=sort)
    last = models.reverse()[:1].get()  # (a cursor near the end: the deepest page there is)
    deep = models.filter(keyset.beyond(keys, [getattr(last, k) for k, _ in keys]))[:26]
    plan = explain(deep)
    assert_no_seq_scan(plan, ModelVersion)
    assert "OFFSET" not in str(deep.query)
    if user.is_superuser:  # (a reviewer's few models: the planner may read them and sort)
        index = {"name": "name_key", "-updated_at": "model_updated_idx"}.get(sort)
        assert index is None or index in plan, plan
    cursor = keyset.encode(last, keys)
    response = client.get(reverse("models_app:model_list"), {"sort": sort, "before": cursor})
    assert response.status_code == 200


def test_the_badge_reads_counters_not_versions(persona):
    """The badge of every page: a superuser's count in one query; a reviewer's in two, the ids
    of the models they review, then the count with those ids written out, so that the
    planner knows how many models it counts over (the grants as a subquery were guessed at a
    handful). Neither scans the versions or the reviews."""
    _, user = persona
    with CaptureQueriesContext(connection) as ctx:
        count = waiting_count(user)
    queries = [q["sql"] for q in ctx.captured_queries]
    assert len(queries) == (1 if user.is_superuser else 2)
    for sql in queries:
        plan = explain(sql.replace("%", "%%"), analyze=True)
        assert_no_seq_scan(plan, ModelVersion)
        assert_no_seq_scan(plan, Review)
    if not user.is_superuser:
        assert "objectpermission" not in queries[-1]  # (the count: ids, not the grants)
    assert count == versions_waiting_for(user).count()
