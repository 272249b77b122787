"""Dataset list, page and registration form."""

import pytest
from django.urls import reverse

from models_app.models import Dataset, VersionDataset
from tests import factories
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
            VersionDataset(version=v, dataset=dataset, role="train") for v in versions
        )

    link(bulk_versions(seen, owner, 3))

    def request():
        assert c.get(dataset.get_absolute_url()).status_code == 200

    def grow():
        link(bulk_versions(seen, owner, 297))
        link(bulk_versions(secret, owner, 300))

    count = assert_constant_queries(request, grow)
    with django_assert_max_num_queries(6):
        request()
    assert count <= 6
    html = c.get(dataset.get_absolute_url(), {"page": 12}).content.decode()
    assert "Page 12 of 12" in html and "secret-sauce" not in html


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
            VersionDataset(version=v, dataset=dataset, role="train") for v in versions
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
    assert body["versions"]["count"] == 300
    assert {v["model"] for v in body["versions"]["items"]} == {"seen"}
    assert [v["number"] for v in body["versions"]["items"]][:3] == [300, 299, 298]
