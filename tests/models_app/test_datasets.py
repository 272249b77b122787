"""Dataset list, page and registration form."""

import re

import pytest
from django.urls import reverse

from core import keyset
from models_app import selectors
from models_app.models import Dataset, VersionDataset
from tests import factories
from tests.conftest import count_queries
from tests.models_app.test_browse import bulk_versions

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(owner):
    return Dataset.objects.create(
        name="payments-2024", uri="s3://data/payments", digest="sha256:abc", created_by=owner
    )


def test_dataset_list_searches_name_and_uri(client_for, viewer, owner, dataset):
    Dataset.objects.create(name="clicks", uri="s3://data/clicks", created_by=owner)
    c = client_for(viewer)
    html = c.get(reverse("models_app:dataset_list"), {"q": "payments"}).content.decode()
    assert "payments-2024" in html and "clicks" not in html
    html = c.get(reverse("models_app:dataset_list"), {"q": "data/clicks"}).content.decode()
    assert "clicks" in html and "payments-2024" not in html


def test_dataset_list_paginates_and_ignores_a_junk_page(client_for, viewer, owner):
    Dataset.objects.bulk_create(Dataset(name=f"d{i:02}", created_by=owner) for i in range(30))
    c = client_for(viewer)
    assert "Page 1 of 2" in c.get(reverse("models_app:dataset_list")).content.decode()
    assert c.get(reverse("models_app:dataset_list"), {"page": "junk"}).status_code == 200


def test_dataset_page_lists_versions_with_their_role(client_for, owner, viewer, dataset):
    model = factories.registered_model(owner, "fraud-detector")
    factories.grant(viewer, model, "view")
    factories.version(model, owner, datasets=[{"name": "payments-2024", "role": "test"}])
    html = client_for(viewer).get(dataset.get_absolute_url()).content.decode()
    assert "sha256:abc" in html and "s3://data/payments" in html
    assert reverse("models_app:version_detail", args=[model.slug, 1]) in html
    assert "Test" in html


def test_dataset_page_says_nothing_of_hidden_models(client_for, owner, viewer, dataset):
    secret = factories.registered_model(owner, "secret-sauce")
    factories.version(secret, owner, datasets=[{"name": "payments-2024", "role": "train"}])
    html = client_for(viewer).get(dataset.get_absolute_url()).content.decode()
    assert "secret-sauce" not in html
    assert secret.slug not in html
    assert "None that you can view" in html


def test_dataset_create_registers_and_redirects(client_for, viewer):
    c = client_for(viewer)
    assert c.get(reverse("models_app:dataset_create")).status_code == 200
    response = c.post(
        reverse("models_app:dataset_create"),
        {"name": "clicks", "uri": "s3://x", "digest": "sha256:1", "row_count": "10"},
    )
    dataset = Dataset.objects.get(name="clicks")
    assert response.status_code == 302
    assert response["Location"] == dataset.get_absolute_url()
    assert dataset.created_by == viewer and dataset.row_count == 10


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"name": "payments-2024"}, "Dataset with this Name already exists."),
        ({"name": ""}, "This field is required."),
        ({"name": "x", "row_count": "-1"}, "greater than or equal to 0"),
    ],
)
def test_dataset_create_explains_bad_input_and_changes_nothing(
    client_for, viewer, dataset, data, error
):
    response = client_for(viewer).post(reverse("models_app:dataset_create"), data)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert Dataset.objects.count() == 1


def test_dataset_create_needs_login_and_csrf(anonymous, viewer):
    from django.test import Client

    assert anonymous.get(reverse("models_app:dataset_create")).status_code == 302
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(viewer)
    assert strict.post(reverse("models_app:dataset_create"), {"name": "x"}).status_code == 403


def test_dataset_page_missing_is_404(client_for, viewer):
    assert (
        client_for(viewer).get(reverse("models_app:dataset_detail", args=[999])).status_code == 404
    )


def test_dataset_page_query_count_is_constant(
    client_for, owner, viewer, dataset, assert_constant_queries, django_assert_max_num_queries
):
    seen = factories.registered_model(owner, "seen", visibility="internal")
    secret = factories.registered_model(owner, "secret-sauce")
    c = client_for(viewer)

    def link(versions):
        VersionDataset.objects.bulk_create(
            VersionDataset(version=v, model_id=v.model_id, dataset=dataset, role="train")
            for v in versions
        )

    link(bulk_versions(seen, owner, 3))

    def request():
        assert c.get(dataset.get_absolute_url()).status_code == 200

    def grow():
        link(bulk_versions(seen, owner, 297))
        link(bulk_versions(secret, owner, 300))

    count = assert_constant_queries(request, grow)
    with django_assert_max_num_queries(7):
        request()
    assert count <= 7


def _rows_and_links(html: str) -> tuple[list[str], dict[str, str]]:
    """The page's versions ("model/number", as their links name them) and its Previous and
    Next links ({rel: query string})."""
    table = html.split("Versions using it")[1]
    rows = re.findall(r'href="/models/([^/"]+)/versions/(\d+)/"', table)
    links = dict(
        (rel, query.replace("&amp;", "&"))
        for query, rel in re.findall(r'href="\?([^"]*)" rel="(prev|next)"', table)
    )
    return [f"{m}/{n}" for m, n in rows], links


@pytest.mark.parametrize("as_owner", [True, False])
def test_dataset_pages_walk_forward_and_back_without_gaps_or_repeats(
    client_for, owner, viewer, dataset, as_owner
):
    """Next to the last page and Previous back to the first (cursors, as the model list):
    every version the user may view once, newest first, each role of a version its own row;
    a viewer never meets the model they may not view, and a cursor that does not decode is
    the first page."""
    seen = factories.registered_model(owner, "seen", visibility="internal")
    secret = factories.registered_model(owner, "secret-sauce")
    versions = bulk_versions(seen, owner, 30)
    hidden = bulk_versions(secret, owner, 20)
    VersionDataset.objects.bulk_create(
        [
            VersionDataset(version=v, model_id=v.model_id, dataset=dataset, role="train")
            for v in versions + hidden
        ]
        + [
            VersionDataset(version=v, model_id=v.model_id, dataset=dataset, role="test")
            for v in versions[:5]
        ]
    )
    c = client_for(owner if as_owner else viewer)
    expected = sorted(
        [(v.pk, role, f"seen/{v.number}") for v in versions for role in ("test", "train")
         if role == "train" or v in versions[:5]]
        + ([(v.pk, "train", f"secret-sauce/{v.number}") for v in hidden] if as_owner else []),
        key=lambda row: (-row[0], row[1]),
    )  # fmt: skip
    expected = [name for _, _, name in expected]

    url = dataset.get_absolute_url()
    pages, query = [], ""
    while True:
        rows, links = _rows_and_links(c.get(f"{url}?{query}").content.decode())
        pages.append(rows)
        if "next" not in links:
            break
        query = links["next"]
    assert [row for page in pages for row in page] == expected
    assert all(len(page) == 25 for page in pages[:-1]) and len(pages) > 1
    back = []
    while "prev" in links:
        query = links["prev"]
        rows, links = _rows_and_links(c.get(f"{url}?{query}").content.decode())
        back.insert(0, rows)
    assert back == pages[:-1]
    # A deep page costs the first page's queries: session and user, the badge (the owner
    # reviews their models: their ids, then the count; the viewer none: one), the dataset,
    # the ids of the models the user may view, the page's links alone, then their versions.
    deep = f"{url}?{query}"
    c.get(url)
    pinned = 8 if as_owner else 7
    assert count_queries(lambda: c.get(url)) == count_queries(lambda: c.get(deep)) == pinned
    first, _ = _rows_and_links(c.get(url, {"after": "not-a-cursor"}).content.decode())
    assert first == pages[0]


def test_dataset_page_lists_newest_versions_first_across_models(client_for, owner, dataset):
    """Newest first, by the link table's own order (its index), whatever the models' names."""
    zebra = factories.registered_model(owner, "zebra", visibility="internal")
    alpha = factories.registered_model(owner, "alpha", visibility="internal")
    for model in (zebra, alpha, zebra):
        factories.version(model, owner, datasets=[{"name": "payments-2024", "role": "train"}])
    html = client_for(owner).get(dataset.get_absolute_url()).content.decode()
    order = [
        html.index(reverse("models_app:version_detail", args=[m.slug, n]))
        for m, n in ((zebra, 2), (alpha, 1), (zebra, 1))
    ]
    assert order == sorted(order)


def test_dataset_api_query_count_is_constant_and_hides_other_models(
    api_client, owner, viewer, dataset, assert_constant_queries
):
    seen = factories.registered_model(owner, "seen", visibility="internal")
    secret = factories.registered_model(owner, "secret-sauce")
    c = api_client(viewer)

    def link(versions):
        VersionDataset.objects.bulk_create(
            VersionDataset(version=v, model_id=v.model_id, dataset=dataset, role="train")
            for v in versions
        )

    link(bulk_versions(seen, owner, 3))

    def request():
        response = c.get(f"/api/v1/datasets/{dataset.pk}")
        assert response.status_code == 200
        return response.json()

    def grow():
        link(bulk_versions(secret, owner, 300))
        link(bulk_versions(seen, owner, 297))

    assert assert_constant_queries(request, grow) <= 5
    body = request()
    assert "count" not in body["versions"]  # (no count of 100,000 links: cursors instead)
    assert {v["model"] for v in body["versions"]["items"]} == {"seen"}
    assert [v["number"] for v in body["versions"]["items"]][:3] == [300, 299, 298]
    # A deep page (after a cursor) costs what the first page costs.
    deep = body["versions"]["next"]
    assert deep is not None
    assert count_queries(lambda: c.get(deep)) == count_queries(request)


@pytest.mark.parametrize("as_owner", [True, False])
def test_dataset_api_pages_walk_forward_and_back_by_cursor(
    api_client, owner, viewer, dataset, as_owner
):
    """``next`` to the last page and ``previous`` back to the first: every link the caller
    may see once, newest version first (a version's roles in order), none of a hidden model."""
    seen = factories.registered_model(owner, "seen", visibility="internal")
    secret = factories.registered_model(owner, "secret-sauce")
    versions = bulk_versions(seen, owner, 12)
    hidden = bulk_versions(secret, owner, 8)
    VersionDataset.objects.bulk_create(
        [VersionDataset(version=v, model_id=v.model_id, dataset=dataset, role="train")
         for v in versions + hidden]
        + [VersionDataset(version=v, model_id=v.model_id, dataset=dataset, role="test")
           for v in versions[:3]]
    )  # fmt: skip
    shown = versions + (hidden if as_owner else [])
    expected = sorted(
        [(v.pk, "train", v.model.name, v.number) for v in shown]
        + [(v.pk, "test", v.model.name, v.number) for v in versions[:3]],
        key=lambda row: (-row[0], row[1]),
    )
    expected = [(name, number, role) for _, role, name, number in expected]
    c = api_client(owner if as_owner else viewer)

    def versions_of(url):
        response = c.get(url)
        assert response.status_code == 200, response.content
        page = response.json()["versions"]
        return [(v["model"], v["number"], v["role"]) for v in page["items"]], page

    pages, url = [], f"/api/v1/datasets/{dataset.pk}?limit=4"
    while url is not None:
        rows, page = versions_of(url)
        pages.append(rows)
        url = page["next"]
    assert [row for rows in pages for row in rows] == expected
    assert all(len(rows) == 4 for rows in pages[:-1]) and len(pages) > 2
    assert versions_of(f"/api/v1/datasets/{dataset.pk}?limit=4")[1]["previous"] is None
    back, url = [], page["previous"]
    while url is not None:
        rows, page = versions_of(url)
        back.insert(0, rows)
        url = page["previous"]
    assert back == pages[:-1]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("after=not-a-cursor", "after", "`after` is not a cursor of this list"),
        ("before=WzEsMiwzXQ", "before", "`before` is not a cursor of this list"),  # [1,2,3]
        ("after=WyJ4IiwidHJhaW4iXQ", "after", "`after` is not a cursor"),  # ["x","train"]
        ("after=WzEsInRyYWluIl0&before=WzEsInRyYWluIl0", "before", "not both"),
        ("page=2", "page", "page by cursor"),
    ],
)
def test_dataset_api_refuses_a_bad_cursor_clearly(
    api_client, viewer, dataset, query, field, message
):
    response = api_client(viewer).get(f"/api/v1/datasets/{dataset.pk}?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == field
    assert message in error["message"]


def test_dataset_api_reads_after_a_cursor_and_accepts_page_one(api_client, owner, dataset):
    seen = factories.registered_model(owner, "seen", visibility="internal")
    versions = bulk_versions(seen, owner, 3)
    VersionDataset.objects.bulk_create(
        VersionDataset(version=v, model_id=v.model_id, dataset=dataset) for v in versions
    )
    middle = VersionDataset.objects.get(version=versions[1])
    cursor = keyset.encode(middle, selectors.LINK_KEYS)
    response = api_client(owner).get(f"/api/v1/datasets/{dataset.pk}?after={cursor}&page=1")
    assert response.status_code == 200
    assert [v["number"] for v in response.json()["versions"]["items"]] == [versions[0].number]
