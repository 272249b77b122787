"""Comparing versions side by side."""

import re

import pytest
from django.urls import reverse

from tests import factories
from tests.models_app.test_browse import bulk_versions, without_tokens

pytestmark = pytest.mark.django_db


def compare_url(*ids) -> str:
    return reverse("models_app:compare") + "?" + "&".join(f"v={i}" for i in ids)


@pytest.fixture
def model(owner):
    return factories.registered_model(owner, "fraud-detector", metric_directions={"recall": False})


def test_compare_shows_metrics_with_deltas_coloured_by_direction(client_for, owner, viewer, model):
    factories.grant(viewer, model, "view")
    first = factories.version(
        model, owner, metrics={"accuracy": 0.80, "loss": 0.50, "recall": 0.7, "f1": 0.6}
    )
    second = factories.version(
        model, owner, metrics={"accuracy": 0.90, "loss": 0.60, "recall": 0.6, "f1": 0.6}
    )
    response = client_for(viewer).get(compare_url(first.pk, second.pk))
    assert response.status_code == 200
    html = response.content.decode()

    def delta(metric: str) -> str:
        row = re.search(rf"<th scope=\"row\">{metric} .*?</tr>", html, re.S).group(0)
        return re.search(r'<span class="([^"]*)">\(', row).group(1)

    assert delta("accuracy") == "delta-better"  # up, higher is better
    assert delta("loss") == "delta-worse"  # up, lower is better (default for loss)
    assert delta("recall") == "delta-better"  # down, and the model says lower is better
    assert delta("f1") == ""  # unchanged
    assert "(+0.1)" in html


def test_compare_diffs_params_dependencies_datasets_tags_and_signature(client_for, owner, model):
    a = factories.version(
        model,
        owner,
        params={"depth": 6, "lr": 0.1},
        requirements="numpy==1.26\npandas",
        tags={"stage": "a"},
        datasets=[{"name": "train-2024", "role": "train"}],
        signature={"inputs": [{"name": "amount", "type": "double"}]},
    )
    b = factories.version(
        model,
        owner,
        params={"depth": 8, "estimators": 100},
        requirements="numpy==2.0\nscipy",
        tags={"stage": "a"},
        datasets=[{"name": "train-2025", "role": "train"}],
        signature={"inputs": [{"name": "amount", "type": "float"}]},
    )
    html = client_for(owner).get(compare_url(a.pk, b.pk)).content.decode()
    for section in ("Parameters", "Dependencies", "Datasets", "Tags", "Signature"):
        assert f"<h2>{section}</h2>" in html
    assert 'class="diff-changed" title="changed"><code>8</code>' in html
    assert 'class="diff-added" title="added"><code>100</code>' in html
    assert 'class="diff-removed" title="removed"' in html
    assert "train-2025" in html and "inputs[0].type" in html


def test_compare_across_models_uses_first_model_directions(client_for, owner, model):
    other = factories.registered_model(owner, "other-model")
    a = factories.version(model, owner, metrics={"recall": 0.7})
    b = factories.version(other, owner, metrics={"recall": 0.8})
    html = client_for(owner).get(compare_url(a.pk, b.pk)).content.decode()
    assert "fraud-detector v1" in html and "other-model v1" in html
    assert '<span class="delta-worse">(+0.1)</span>' in html


def test_compare_with_a_hidden_version_is_the_same_404_as_a_missing_one(
    client_for, owner, viewer, model
):
    factories.grant(viewer, model, "view")
    seen = factories.version(model, owner)
    secret = factories.registered_model(owner, "secret-sauce")
    hidden = factories.version(secret, owner, metrics={"accuracy": 0.99})
    c = client_for(viewer)
    hidden_response = c.get(compare_url(seen.pk, hidden.pk))
    missing_response = c.get(compare_url(seen.pk, 999999))
    assert hidden_response.status_code == missing_response.status_code == 404
    assert without_tokens(hidden_response.content) == without_tokens(missing_response.content)
    assert "secret-sauce" not in hidden_response.content.decode()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "at least 2"),
        ("v=1", "at least 2"),
        ("v=1&v=1", "at least 2"),
        ("&".join(f"v={i}" for i in range(1, 12)), "at most 10"),
        ("v=1&v=abc", "is not a version id"),
        ("v=1&v=-2", "is not a version id"),
        ("v=1&v=%D9%A3", "is not a version id"),
    ],
)
def test_bad_compare_requests_get_400_with_a_message(client_for, viewer, query, message):
    response = client_for(viewer).get(reverse("models_app:compare") + "?" + query)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_compare_is_get_only_and_needs_login(client_for, anonymous, viewer):
    assert client_for(viewer).post(reverse("models_app:compare")).status_code == 405
    assert anonymous.get(compare_url(1, 2)).status_code == 302


def test_compare_query_count_is_constant(
    client_for, owner, model, assert_constant_queries, django_assert_max_num_queries
):
    versions = bulk_versions(model, owner, 3, metrics=("accuracy", "loss"))
    c = client_for(owner)
    url = compare_url(*(v.pk for v in versions))

    def request():
        assert c.get(url).status_code == 200

    count = assert_constant_queries(request, lambda: bulk_versions(model, owner, 297))
    # 11: the navigation's badge reads a non-superuser's reviewable models, then counts over them.
    with django_assert_max_num_queries(11):
        request()
    assert count <= 11
