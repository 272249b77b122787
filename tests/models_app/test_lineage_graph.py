"""A version's lineage as a server-rendered graph (and as JSON), and a dataset's impact: which
versions, and which production models, used the data. Hidden versions never show a name."""

import re

import pytest
from django.urls import reverse

from approvals.models import Alias
from models_app.lineage import LINEAGE_DEPTH, lineage_graph, walk_lineage
from models_app.models import ModelVersion, VersionDataset, VersionParent
from tests import factories
from tests.conftest import count_queries
from tests.models_app.test_browse import bulk_versions
from tests.models_app.test_register import use_local_storage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    return use_local_storage(settings, tmp_path)


@pytest.fixture
def encoder(owner):
    return factories.registered_model(owner, "encoder", visibility="internal")


@pytest.fixture
def family(owner, viewer, encoder):
    """encoder v1 → router v1 (fine-tuned) → router v2 (retrained), each with data."""
    factories.version(
        encoder, owner, datasets=[{"name": "tickets-2025", "role": "train", "rows": 1000}]
    )
    router = factories.registered_model(owner, "router")
    factories.grant(viewer, router, "view")
    v1 = factories.version(
        router, owner,
        datasets=[{"name": "labelled", "role": "train"}, {"name": "holdout", "role": "test"}],
        parents=[{"model": "encoder", "version": 1, "relation": "fine_tuned"}],
    )  # fmt: skip
    v2 = factories.version(router, owner, parents=[{"model": "router", "version": 1}])
    return router, v1, v2


def lineage_url(version):
    return reverse("models_app:version_lineage", args=[version.model.slug, version.number])


def svg_of(html: str) -> str:
    return html[html.index("<svg") : html.index("</svg>")]


def test_the_graph_shows_parents_children_and_datasets_as_links(client_for, viewer, family):
    router, v1, v2 = family
    html = client_for(viewer).get(lineage_url(v1)).content.decode()
    svg = svg_of(html)
    assert 'role="img"' in svg and "<script" not in html.split("<svg")[1].split("</svg>")[0]
    encoder_v1 = ModelVersion.objects.get(model__name="encoder")
    assert f'<a href="{encoder_v1.get_absolute_url()}"' in svg  # the parent
    assert f'<a href="{v2.get_absolute_url()}"' in svg  # the child
    for dataset in ("tickets-2025", "labelled", "holdout"):
        assert f">{dataset}</text>" in svg
    labelled = VersionDataset.objects.get(dataset__name="labelled").dataset
    assert f'<a href="{labelled.get_absolute_url()}"' in svg
    assert ">fine-tuned</text>" in svg and ">retrained</text>" in svg
    assert reverse("models_app:dataset_impact", args=[labelled.pk]) in html


def test_layers_put_data_and_ancestors_above_and_descendants_below(viewer, family):
    _router, v1, _v2 = family
    graph = lineage_graph(v1, viewer)
    y = {n.label: n.y for n in graph.nodes.values()}
    assert y["tickets-2025"] < y["encoder v1"] < y["router v1"] < y["router v2"]
    assert y["labelled"] < y["router v1"]
    assert (graph.ancestors, graph.descendants) == (1, 1)


def test_hidden_versions_have_no_name_link_or_id_and_are_not_walked_past(
    client_for, owner, viewer, family
):
    router, v1, _v2 = family
    secret = factories.registered_model(owner, "secret-sauce")
    hidden = factories.version(secret, owner, parents=[{"model": "router", "version": 2}])
    factories.version(router, owner, parents=[{"model": "secret-sauce", "version": 1}])  # v3
    html = client_for(viewer).get(lineage_url(v1)).content.decode()
    assert "hidden version" in svg_of(html)
    assert "secret-sauce" not in html and hidden.get_absolute_url() not in html
    assert f"v{hidden.pk}" not in re.findall(r'id="[^"]*"', html)
    v3 = ModelVersion.objects.get(model=router, number=3)
    assert v3.get_absolute_url() not in html  # beyond the hidden version
    as_owner = client_for(owner).get(lineage_url(v1)).content.decode()
    assert hidden.get_absolute_url() in as_owner and v3.get_absolute_url() in as_owner


def test_the_walk_stops_at_the_depth_limit(client_for, owner, encoder):
    chain = bulk_versions(encoder, owner, 2 * LINEAGE_DEPTH + 3)
    VersionParent.objects.bulk_create(
        VersionParent.linking(c, p, "fine_tuned") for p, c in zip(chain, chain[1:], strict=False)
    )
    middle = chain[LINEAGE_DEPTH + 1]
    graph = lineage_graph(middle, owner)
    shown = sorted(n.version.number for n in graph.nodes.values() if n.version)
    assert shown == list(range(middle.number - LINEAGE_DEPTH, middle.number + LINEAGE_DEPTH + 1))


def test_a_crowded_generation_is_summed_up(client_for, owner, family):
    router, v1, _v2 = family
    siblings = bulk_versions(router, owner, 40)
    VersionParent.objects.bulk_create(VersionParent.linking(s, v1, "retrained") for s in siblings)
    html = client_for(owner).get(lineage_url(v1)).content.decode()
    assert ">+16 more</text>" in html  # 41 children, 25 drawn


def test_walk_lineage_names_each_ancestor_with_how_it_is_linked(viewer, family):
    _router, v1, _v2 = family
    (generation,) = walk_lineage(v1, viewer, up=True)
    assert generation[0].version.model.name == "encoder"
    assert generation[0].note == "router v1 was fine-tuned from it"


# ---------------------------------------------------------------------------------------------
# Bounded queries


def graph_queries(client, version) -> int:
    return count_queries(lambda: client.get(lineage_url(version)))


def test_lineage_page_query_count_does_not_grow_with_the_graph(
    client_for, owner, family, assert_constant_queries
):
    router, v1, _v2 = family
    c = client_for(owner)

    def request():
        assert c.get(lineage_url(v1)).status_code == 200

    def grow():  # 300 more children of v1, 300 more datasets of v1
        siblings = bulk_versions(router, owner, 300)
        VersionParent.objects.bulk_create(
            VersionParent.linking(s, v1, "retrained") for s in siblings
        )
        from models_app.models import Dataset

        datasets = Dataset.objects.bulk_create(
            Dataset(name=f"d{i}", created_by=owner) for i in range(300)
        )
        VersionDataset.objects.bulk_create(
            VersionDataset(version=v1, model_id=v1.model_id, dataset=d) for d in datasets
        )

    count = assert_constant_queries(request, grow)
    assert count <= 12, count


def test_each_generation_costs_at_most_one_query(client_for, owner, encoder):
    chain = bulk_versions(encoder, owner, 2 * LINEAGE_DEPTH + 5)
    c = client_for(owner)
    middle = chain[LINEAGE_DEPTH + 2]
    lonely = graph_queries(c, middle)  # no links: one walk query finds nothing
    VersionParent.objects.bulk_create(
        VersionParent.linking(child, parent, "fine_tuned")
        for parent, child in zip(chain, chain[1:], strict=False)
    )
    deep = graph_queries(c, middle)
    # Both ways share one query per generation: DEPTH generations, the last one full.
    assert deep - lonely == LINEAGE_DEPTH - 1, (lonely, deep)


# ---------------------------------------------------------------------------------------------
# Dataset impact


@pytest.fixture
def production(owner, reviewer, family):
    from approvals import services as reviews

    router, v1, _v2 = family
    factories.grant(reviewer, router, "review")
    ModelVersion.objects.filter(pk=v1.pk).update(status="approved")
    reviews.alias_set(actor=owner, model=router, name="production", version=v1)
    return v1


def impact_url(name: str) -> str:
    from models_app.models import Dataset

    return reverse("models_app:dataset_impact", args=[Dataset.objects.get(name=name).pk])


def test_impact_lists_direct_and_derived_versions_and_production(client_for, viewer, production):
    html = client_for(viewer).get(impact_url("tickets-2025")).content.decode()
    direct = html[html.index('id="direct"') : html.index('id="derived"')]
    derived = html[html.index('id="derived"') :]
    assert ">encoder v1</a>" in direct and ">router v1</a>" not in direct
    assert ">router v1</a>" in derived and ">router v2</a>" in derived
    in_production = html[html.index('id="production"') : html.index('id="direct"')]
    assert ">router v1</a>" in in_production and "fine-tuned from encoder v1" in in_production
    labelled = client_for(viewer).get(impact_url("labelled")).content.decode()
    assert "<strong>1</strong> approved" in labelled
    assert "<strong>1</strong> in production now" in labelled


def test_impact_says_nothing_about_models_the_viewer_cannot_see(client_for, outsider, production):
    html = client_for(outsider).get(impact_url("labelled")).content.decode()
    assert "router" not in html
    assert "<strong>0</strong> version" in html and "None that you can view." in html


def test_impact_of_a_missing_dataset_is_404(client_for, viewer):
    response = client_for(viewer).get(reverse("models_app:dataset_impact", args=[999]))
    assert response.status_code == 404


def test_impact_page_query_count_is_constant(
    client_for, viewer, owner, production, assert_constant_queries
):
    router, v1 = production.model, production
    c = client_for(viewer)
    url = impact_url("labelled")
    dataset = VersionDataset.objects.get(version=v1, dataset__name="labelled").dataset

    def request():
        assert c.get(url).status_code == 200

    def grow():
        users = bulk_versions(router, owner, 300, status="approved")
        VersionDataset.objects.bulk_create(
            VersionDataset(version=v, model_id=v.model_id, dataset=dataset) for v in users
        )
        children = bulk_versions(router, owner, 300)
        VersionParent.objects.bulk_create(
            VersionParent.linking(ch, p, "fine_tuned")
            for ch, p in zip(children, users, strict=True)
        )

    count = assert_constant_queries(request, grow)
    assert count <= 16, count
    assert Alias.objects.filter(name="production").count() == 1
