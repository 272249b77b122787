"""The model list, a model's page, the CSV export, a version's page and its lineage."""

import csv
import io
import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit import chain
from audit.models import AuditEvent
from core import keyset
from models_app import selectors, summary
from models_app.models import (
    Metric,
    ModelTag,
    ModelVersion,
    RegisteredModel,
    VersionParent,
)
from models_app.names import name_key
from tests import factories

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------------------------------------
# Bulk helpers: hundreds of rows straight through the ORM, for the query-count tests.


def bulk_versions(model, actor, count: int, *, metrics=("accuracy",), status="draft"):
    """``count`` versions numbered after the model's last, each with the given metrics."""
    start = RegisteredModel.objects.get(pk=model.pk).next_version_number
    versions = ModelVersion.objects.bulk_create(
        ModelVersion(
            model=model, number=start + i, created_by=actor, status=status, framework="sklearn"
        )
        for i in range(count)
    )
    Metric.objects.bulk_create(
        Metric(version=v, name=name, split="test", value=0.5 + i / 1000)
        for i, v in enumerate(versions)
        for name in metrics
    )
    RegisteredModel.objects.filter(pk=model.pk).update(next_version_number=start + count)
    summary.recompute([model.pk])  # (the services keep it; rows written here do not)
    return versions


def bulk_models(owner, count: int, *, prefix: str, visibility="internal"):
    models = RegisteredModel.objects.bulk_create(
        RegisteredModel(
            name=f"{prefix}-{i}",
            name_key=name_key(f"{prefix}-{i}"),
            slug=name_key(f"{prefix}-{i}"),
            owner=owner,
            visibility=visibility,
        )
        for i in range(count)
    )
    for model in models:  # one version each, so the summary columns have work to do
        bulk_versions(model, owner, 1)
    return models


def without_tokens(html: bytes) -> str:
    """The page without its per-response tokens (CSRF, CSP nonce)."""
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html.decode())
    return re.sub(r'nonce="[^"]*"', "", html)


@pytest.fixture
def model(owner):
    return factories.registered_model(
        owner,
        "fraud-detector",
        description="Flags **suspicious** payments.",
        tags={"domain": "payments"},
    )


@pytest.fixture
def hidden(owner):
    """A private model nobody but its owner may view."""
    return factories.registered_model(owner, "secret-sauce", description="classified")


# ---------------------------------------------------------------------------------------------
# Model list


def test_model_list_shows_visible_models_with_summary(client_for, owner, viewer, model):
    factories.grant(viewer, model, "view")
    factories.version(model, owner, framework="sklearn")
    factories.version(model, owner)
    html = client_for(viewer).get(reverse("models_app:model_list")).content.decode()
    assert "fraud-detector" in html
    assert "v2" in html
    assert "<strong>1</strong> model<" in html
    assert reverse("models_app:model_create") in html
    assert reverse("models_app:dataset_list") in html


def test_hidden_model_is_not_listed_nor_counted(client_for, owner, outsider, model, hidden):
    html = client_for(outsider).get(reverse("models_app:model_list")).content.decode()
    assert "secret-sauce" not in html and "fraud-detector" not in html
    assert "<strong>0</strong> models" in html


def test_search_by_hidden_models_exact_name_finds_nothing(client_for, viewer, model, hidden):
    factories.grant(viewer, model, "view")
    c = client_for(viewer)
    for q in ("secret-sauce", "classified"):
        html = c.get(reverse("models_app:model_list"), {"q": q}).content.decode()
        assert hidden.get_absolute_url() not in html
        assert "<strong>0</strong> models" in html


def test_search_matches_name_description_and_tags(client_for, owner, model, hidden):
    c = client_for(owner)
    for q in ("fraud", "suspicious", "payments", "DOMAIN"):
        html = c.get(reverse("models_app:model_list"), {"q": q}).content.decode()
        assert "fraud-detector" in html, q
        assert "secret-sauce" not in html, q


@pytest.mark.postgres_only
def test_search_uses_full_text_on_postgresql(client_for, owner, model, hidden):
    if connection.vendor != "postgresql":
        pytest.skip("full-text search is used on PostgreSQL only")
    # Words in any order, as in a search engine; icontains would need the exact phrase.
    html = client_for(owner).get(reverse("models_app:model_list"), {"q": "payments suspicious"})
    assert "fraud-detector" in html.content.decode()


@pytest.mark.parametrize(
    ("params", "found"),
    [
        ({"team": "risk"}, True),
        ({"team": "other"}, False),
        ({"owner": "owner"}, True),
        ({"owner": "nobody"}, False),
        ({"framework": "XGBoost"}, True),
        ({"framework": "torch"}, False),
        ({"task": "regression"}, True),
        ({"task": "ranking"}, False),
        ({"tag": "domain"}, True),
        ({"tag": "domain=payments"}, True),
        ({"tag": "domain=cards"}, False),
        ({"status": "approved"}, True),
        ({"status": "in_review"}, False),
    ],
)
def test_filters_select_matching_models(client_for, owner, viewer, params, found):
    team = factories.team("risk", owner)
    model = factories.registered_model(
        owner, "churn", team=team, task="regression", tags={"domain": "payments"}
    )
    factories.registered_model(viewer, "other-model", visibility="internal")
    factories.version(model, owner, framework="xgboost")
    ModelVersion.objects.filter(model=model).update(status="approved")
    summary.recompute([model.pk])
    html = client_for(owner).get(reverse("models_app:model_list"), params).content.decode()
    assert ("churn" in html) is found
    assert "other-model" not in html


@pytest.mark.parametrize(
    "params", [{"task": "alchemy"}, {"status": "shipped"}, {"sort": "'; drop"}, {"page": "junk"}]
)
def test_invalid_list_parameters_are_reported_or_ignored_not_500(client_for, owner, model, params):
    response = client_for(owner).get(reverse("models_app:model_list"), params)
    assert response.status_code == 200
    html = response.content.decode()
    assert "fraud-detector" in html
    if "page" not in params:
        assert "Ignored" in html and "Select a valid choice" in html


def test_model_list_sorts_by_latest_version(client_for, owner):
    few = factories.registered_model(owner, "few-versions")
    many = factories.registered_model(owner, "many-versions")
    bulk_versions(few, owner, 1)
    bulk_versions(many, owner, 3)
    html = client_for(owner).get(reverse("models_app:model_list"), {"sort": "-latest"})
    html = html.content.decode()
    assert html.index("many-versions") < html.index("few-versions")


def _listed(html: str) -> list[str]:
    return re.findall(r'<td><a href="/models/([^/"]+)/">', html)


def _link(html: str, rel: str) -> str | None:
    """The model list's Previous or Next link (a query string), as a URL."""
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', html)
    if found is None:
        return None
    return reverse("models_app:model_list") + found.group(1).replace("&amp;", "&")


def test_model_list_paginates_by_25(client_for, owner):
    bulk_models(owner, 30, prefix="m")
    c = client_for(owner)
    first = c.get(reverse("models_app:model_list")).content.decode()
    assert "<strong>30</strong> models" in first
    assert len(_listed(first)) == 25 and _link(first, "prev") is None
    second = c.get(_link(first, "next")).content.decode()
    assert second.count('href="/models/m-') == 5
    assert _link(second, "next") is None
    # ?page=N (links made before cursors) still works for the first pages.
    by_number = c.get(reverse("models_app:model_list"), {"page": 2}).content.decode()
    assert _listed(by_number) == _listed(second)


@pytest.mark.parametrize("sort", ["name", "-updated_at", "-created_at", "-latest"])
def test_every_sort_pages_forward_and_back_without_gaps_or_repeats(client_for, owner, sort):
    models = bulk_models(owner, 60, prefix="p")
    # Ties on every sort key but the name: same update and creation time, same latest number.
    RegisteredModel.objects.filter(pk__in=[m.pk for m in models[:40]]).update(
        updated_at=models[0].updated_at, created_at=models[0].created_at
    )
    expected = list(
        RegisteredModel.objects.order_by(
            *keyset.ordering(selectors.MODEL_SORTS[sort][1])
        ).values_list("slug", flat=True)
    )
    c = client_for(owner)
    url = f"{reverse('models_app:model_list')}?sort={sort}"
    pages = []
    while url:
        html = c.get(url).content.decode()
        pages.append(_listed(html))
        url = _link(html, "next")
    assert [len(p) for p in pages] == [25, 25, 10]
    assert [slug for page in pages for slug in page] == expected
    # Back from the last page: the same pages in reverse.
    back = []
    html = c.get(f"{reverse('models_app:model_list')}?sort={sort}").content.decode()
    for _ in range(2):
        html = c.get(_link(html, "next")).content.decode()
    while True:
        back.append(_listed(html))
        previous = _link(html, "prev")
        if previous is None:
            break
        html = c.get(previous).content.decode()
    assert back == pages[::-1]


@pytest.mark.parametrize("cursor", ["junk", "WzFd", "eyJhIjoxfQ", "WyJ4IiwieSJd", "W251bGwsIngiXQ"])
def test_a_cursor_that_does_not_parse_shows_the_first_page(client_for, owner, cursor):
    bulk_models(owner, 30, prefix="m")
    c = client_for(owner)
    for direction in ("after", "before"):
        response = c.get(reverse("models_app:model_list"), {direction: cursor, "sort": "-latest"})
        assert response.status_code == 200
        assert _listed(response.content.decode())[0] == "m-0"


def test_deep_pages_cost_what_the_first_costs(client_for, owner, django_assert_num_queries):
    bulk_models(owner, 80, prefix="d")
    c = client_for(owner)
    html = c.get(reverse("models_app:model_list"), {"sort": "-latest"}).content.decode()
    with CaptureQueriesContext(connection) as first:
        c.get(reverse("models_app:model_list"), {"sort": "-latest"})
    for _ in range(3):
        with CaptureQueriesContext(connection) as deep:
            html = c.get(_link(html, "next")).content.decode()
        assert len(deep) == len(first)
        assert not any("OFFSET" in q["sql"] for q in deep.captured_queries)


def test_model_list_query_count_is_constant(
    client_for, owner, viewer, assert_constant_queries, django_assert_max_num_queries
):
    bulk_models(owner, 3, prefix="seen")
    c = client_for(viewer)

    def request():
        response = c.get(reverse("models_app:model_list"), {"q": "seen", "status": "draft"})
        assert response.status_code == 200

    def grow():
        bulk_models(owner, 297, prefix="seen-more")
        bulk_models(owner, 300, prefix="seen-hidden", visibility="private")

    count = assert_constant_queries(request, grow)
    with django_assert_max_num_queries(6):
        request()
    assert count <= 6
    html = c.get(reverse("models_app:model_list"), {"q": "seen"}).content.decode()
    assert "<strong>300</strong> models" in html


def test_anonymous_is_sent_to_login_from_browse_pages(anonymous, model):
    for url in (
        reverse("models_app:model_list"),
        reverse("models_app:model_detail", args=[model.slug]),
    ):
        response = anonymous.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


# ---------------------------------------------------------------------------------------------
# Model page


def test_model_page_shows_facts_charts_and_version_grid(client_for, owner, viewer, model):
    factories.grant(viewer, model, "view")
    factories.version(model, owner, metrics={"accuracy": 0.9, "loss": 0.3}, framework="sklearn")
    factories.version(model, owner, metrics={"accuracy": 0.95})
    html = client_for(viewer).get(reverse("models_app:model_detail", args=[model.slug]))
    html = html.content.decode()
    assert "<strong>suspicious</strong>" in html
    assert "domain=payments" in html
    assert "owner" in html
    assert html.count("<svg") == 2  # accuracy and loss
    assert "↓ lower is better" in html
    assert reverse("models_app:version_detail", args=[model.slug, 2]) in html
    assert "0.95" in html
    assert reverse("models_app:versions_csv", args=[model.slug]) in html
    assert f'action="{reverse("models_app:compare")}"' in html
    assert 'name="v"' in html and "Compare selected" in html


def test_model_page_buttons_follow_roles(client_for, owner, viewer, editor, model):
    factories.grant(viewer, model, "view")
    factories.grant(editor, model, "edit")
    create = reverse("models_app:version_create", args=[model.slug])
    edit = reverse("models_app:model_edit", args=[model.slug])
    delete = reverse("models_app:model_delete", args=[model.slug])
    url = reverse("models_app:model_detail", args=[model.slug])

    as_viewer = client_for(viewer).get(url).content.decode()
    assert create not in as_viewer and edit not in as_viewer and delete not in as_viewer
    as_editor = client_for(editor).get(url).content.decode()
    assert create in as_editor and edit not in as_editor and delete not in as_editor
    as_owner = client_for(owner).get(url).content.decode()
    assert create in as_owner and edit in as_owner and delete in as_owner
    assert "data-confirm" in as_owner


def test_model_description_markdown_renders_harmless(client_for, owner):
    model = factories.registered_model(
        owner,
        "sneaky",
        description=(
            "<script>alert('x')</script>\n\n[x](javascript:alert(1)) <img src=x onerror=alert(2)>"
        ),
    )
    html = client_for(owner).get(reverse("models_app:model_detail", args=[model.slug]))
    html = html.content.decode()
    assert "<script>alert" not in html
    assert "javascript:alert" not in html
    assert "onerror" not in html


def test_grid_sorts_by_a_metric_and_paginates(client_for, owner, model):
    versions = bulk_versions(model, owner, 30)
    Metric.objects.filter(version=versions[0]).update(value=0.99)  # v1 is the best
    c = client_for(owner)
    url = reverse("models_app:model_detail", args=[model.slug])
    html = c.get(url, {"sort": "-metric:accuracy@test"}).content.decode()
    rows = re.findall(r'/versions/(\d+)/">v\d+</a>', html)
    assert rows[0] == "1" and len(rows) == 25
    html = c.get(url, {"sort": "number"}).content.decode()
    after = re.search(r'<a href="\?([^"]*)" rel="next">', html).group(1).replace("&amp;", "&")
    html = c.get(f"{url}?{after}").content.decode()
    assert re.findall(r'/versions/(\d+)/">v\d+</a>', html) == [str(n) for n in range(26, 31)]


def test_unknown_grid_sort_is_reported_and_ignored(client_for, owner, model):
    bulk_versions(model, owner, 2)
    response = client_for(owner).get(
        reverse("models_app:model_detail", args=[model.slug]), {"sort": "metric:nope"}
    )
    assert response.status_code == 200
    assert "Unknown sort" in response.content.decode()


def test_model_page_query_count_is_constant(
    client_for, owner, viewer, model, assert_constant_queries, django_assert_max_num_queries
):
    factories.grant(viewer, model, "view")
    bulk_versions(model, owner, 3, metrics=("accuracy", "loss"))
    c = client_for(viewer)
    url = reverse("models_app:model_detail", args=[model.slug])

    def request():
        assert c.get(url, {"sort": "-metric:accuracy@test"}).status_code == 200

    count = assert_constant_queries(
        request, lambda: bulk_versions(model, owner, 297, metrics=("accuracy", "loss"))
    )
    with django_assert_max_num_queries(15):
        request()
    assert count <= 15


# ---------------------------------------------------------------------------------------------
# Outsiders


MODEL_PAGES = [
    ("models_app:model_detail", False),
    ("models_app:versions_csv", False),
    ("models_app:version_detail", True),
    ("models_app:version_lineage", True),
]


@pytest.mark.parametrize(("name", "with_number"), MODEL_PAGES)
def test_outsider_gets_the_same_404_as_for_a_missing_model(
    client_for, owner, outsider, hidden, name, with_number
):
    factories.version(hidden, owner)
    c = client_for(outsider)
    args = [1] if with_number else []
    private = c.get(reverse(name, args=[hidden.slug, *args]))
    missing = c.get(reverse(name, args=["no-such-model", *args]))
    assert private.status_code == missing.status_code == 404
    assert without_tokens(private.content) == without_tokens(missing.content)
    assert "secret-sauce" not in private.content.decode()


# ---------------------------------------------------------------------------------------------
# CSV


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_csv_lists_every_version_with_a_column_per_metric(client_for, owner, viewer, model):
    factories.grant(viewer, model, "view")
    factories.version(model, owner, metrics=[{"name": "f1", "value": 0.8, "split": "test"}])
    factories.version(model, owner, metrics={"accuracy": 0.9}, framework="sklearn")
    bulk_versions(model, owner, 40)
    response = client_for(viewer).get(reverse("models_app:versions_csv", args=[model.slug]))
    assert response["Content-Disposition"].startswith("attachment;")
    rows = _csv(response)
    assert rows[0] == [
        "number",
        "status",
        "created_by",
        "created_at",
        "framework",
        "framework_version",
        "accuracy",
        "accuracy (test)",
        "f1 (test)",
    ]
    assert [r[0] for r in rows[1:]] == [str(n) for n in range(1, 43)]
    assert rows[1][-1] == "0.8" and rows[2][6] == "0.9" and rows[2][4] == "sklearn"


def test_csv_cells_cannot_start_a_formula(client_for, owner, model):
    evil = factories.user("@evil")
    factories.grant(evil, model, "edit")
    factories.version(model, evil, framework='=HYPERLINK("http://x")', framework_version="+1")
    bulk_versions(model, owner, 1)
    ModelVersion.objects.filter(model=model, number=2).update(framework="-2+3")
    rows = _csv(client_for(owner).get(reverse("models_app:versions_csv", args=[model.slug])))
    assert rows[1][2] == "'@evil"
    assert rows[1][4].startswith("'=") and rows[1][5] == "'+1"
    assert rows[2][4] == "'-2+3"


def test_csv_query_count_is_constant(client_for, owner, model, assert_constant_queries):
    bulk_versions(model, owner, 3)
    c = client_for(owner)

    def request():
        _csv(c.get(reverse("models_app:versions_csv", args=[model.slug])))

    assert assert_constant_queries(request, lambda: bulk_versions(model, owner, 297)) <= 8


# ---------------------------------------------------------------------------------------------
# Version page


def test_version_page_shows_every_field(client_for, owner, viewer, model):
    factories.grant(viewer, model, "view")
    version = factories.version(
        model,
        owner,
        description="Trained on *March* data",
        framework="sklearn",
        framework_version="1.5.0",
        python_version="3.12",
        source={"run": "run-42", "repository": "git@example.org:ml.git", "commit": "a" * 40},
        signature={"inputs": [{"name": "amount", "type": "double"}]},
        metrics={"accuracy": 0.91, "loss": 0.2},
        params={"max_depth": 6},
        tags={"stage": "candidate"},
        requirements="scikit-learn==1.5.0\nnumpy>=2",
        datasets=[{"name": "payments-2024", "role": "train"}],
        files={"model.pkl": b"weights", "conf/labels.json": b"[]"},
    )
    html = client_for(viewer).get(version.get_absolute_url()).content.decode()
    for text in (
        "<em>March</em>",
        "1.5.0",
        "3.12",
        "run-42",
        "git@example.org:ml.git",
        "a" * 40,
        "&quot;amount&quot;",
        "max_depth",
        "stage=candidate",
        "scikit-learn",
        "&gt;=2",
        "payments-2024",
        "Training",
        "↓ lower",
        "version.created",
    ):
        assert text in html, text
    artifact = version.artifacts.get(path="model.pkl")
    assert f'data-copy="{artifact.sha256}"' in html
    assert reverse("models_app:artifact_download", args=[model.slug, 1, "conf/labels.json"]) in html
    assert reverse("models_app:version_zip", args=[model.slug, 1]) in html
    dataset = version.dataset_links.get().dataset
    assert dataset.get_absolute_url() in html
    assert reverse("models_app:version_edit", args=[model.slug, 1]) not in html  # viewer


def test_draft_actions_only_for_editors_and_only_on_drafts(client_for, owner, viewer, model):
    factories.grant(viewer, model, "view")
    version = factories.version(model, owner)
    actions = [
        reverse(name, args=[model.slug, 1])
        for name in (
            "models_app:version_edit",
            "models_app:version_delete",
            "models_app:artifact_add",
        )
    ]
    as_owner = client_for(owner).get(version.get_absolute_url()).content.decode()
    assert all(a in as_owner for a in actions)
    as_viewer = client_for(viewer).get(version.get_absolute_url()).content.decode()
    assert not any(a in as_viewer for a in actions)
    ModelVersion.objects.filter(pk=version.pk).update(status="approved")
    approved = client_for(owner).get(version.get_absolute_url()).content.decode()
    assert not any(a in approved for a in actions)


def test_parent_and_child_in_hidden_models_appear_as_hidden_version(
    client_for, owner, viewer, model, hidden
):
    factories.grant(viewer, model, "view")
    hidden_parent = factories.version(hidden, owner)
    version = factories.version(model, owner, parents=[{"model": "secret-sauce", "version": 1}])
    factories.version(
        hidden, owner, parents=[{"model": "fraud-detector", "version": 1, "relation": "distilled"}]
    )
    html = client_for(viewer).get(version.get_absolute_url()).content.decode()
    assert html.count("hidden version") == 2
    assert "secret-sauce" not in html
    assert hidden_parent.get_absolute_url() not in html
    as_owner = client_for(owner).get(version.get_absolute_url()).content.decode()
    assert "hidden version" not in as_owner and hidden_parent.get_absolute_url() in as_owner


def test_version_timeline_is_newest_first_and_bounded(client_for, owner, model):
    version = factories.version(model, owner)
    with transaction.atomic():
        for i in range(60):
            chain.record(actor=owner, action=f"version.note{i}", target=version, reason=f"r{i}")
    html = client_for(owner).get(version.get_absolute_url()).content.decode()
    assert html.index("version.note59") < html.index("version.note58")
    assert "version.note9<" not in html  # only the last 50 are shown
    assert "r59" in html


def test_version_page_query_count_is_constant(
    client_for, owner, viewer, model, hidden, assert_constant_queries, django_assert_max_num_queries
):
    factories.grant(viewer, model, "view")
    from tracking import services as tracking

    experiment = tracking.experiment_create(actor=owner, name="training")
    run = tracking.run_create(actor=owner, experiment=experiment)
    version = factories.version(
        model, owner, metrics={"accuracy": 0.9}, files={"a.bin": b"a"}, source_run=run.pk
    )
    bulk_versions(model, owner, 2)
    c = client_for(viewer)

    def request():
        response = c.get(version.get_absolute_url())
        assert response.status_code == 200
        assert f'href="/runs/{run.pk}/"' in response.content.decode()

    def grow():
        children = bulk_versions(model, owner, 149) + bulk_versions(hidden, owner, 149)
        VersionParent.objects.bulk_create(
            VersionParent.linking(child, version, "retrained") for child in children
        )

    count = assert_constant_queries(request, grow)
    # 22: 20, plus the training run's link (issue 17), plus the "revalidation due" badge (the
    # policy's approval_valid_days, issue 14).
    with django_assert_max_num_queries(22):
        request()
    assert count <= 22


# ---------------------------------------------------------------------------------------------
# Lineage


def _chain(model, owner, length: int) -> list[ModelVersion]:
    versions = bulk_versions(model, owner, length)
    VersionParent.objects.bulk_create(
        VersionParent.linking(child, parent, "fine_tuned")
        for parent, child in zip(versions, versions[1:], strict=False)
    )
    return versions


def test_lineage_walks_five_generations_each_way(client_for, owner, model):
    chain = _chain(model, owner, 13)  # v1 … v13; v7 is in the middle
    url = reverse("models_app:version_lineage", args=[model.slug, 7])
    html = client_for(owner).get(url).content.decode()
    shown = {int(n) for n in re.findall(r'/versions/(\d+)/">fraud-detector', html)}
    assert shown == {2, 3, 4, 5, 6, 8, 9, 10, 11, 12}
    assert len(chain) == 13


def test_lineage_shows_hidden_versions_without_following_them(
    client_for, owner, viewer, model, hidden
):
    factories.grant(viewer, model, "view")
    root = factories.version(model, owner)
    factories.version(hidden, owner, parents=[{"model": "fraud-detector", "version": 1}])
    factories.version(model, owner, parents=[{"model": "secret-sauce", "version": 1}])
    url = reverse("models_app:version_lineage", args=[model.slug, root.number])
    html = client_for(viewer).get(url).content.decode()
    assert "hidden version" in html
    assert "secret-sauce" not in html
    assert reverse("models_app:version_detail", args=[model.slug, 2]) not in html


def test_lineage_query_count_is_constant(client_for, owner, model, assert_constant_queries):
    chain = _chain(model, owner, 3)
    middle = chain[1]
    c = client_for(owner)
    url = reverse("models_app:version_lineage", args=[model.slug, middle.number])

    def request():
        assert c.get(url).status_code == 200

    def grow():
        siblings = bulk_versions(model, owner, 297)
        VersionParent.objects.bulk_create(
            VersionParent.linking(v, middle, "retrained") for v in siblings
        )

    assert assert_constant_queries(request, grow) <= 12


def test_version_page_ignores_events_of_other_targets(client_for, owner, model):
    version = factories.version(model, owner)
    assert AuditEvent.objects.filter(target_type="registeredmodel").exists()
    html = client_for(owner).get(version.get_absolute_url()).content.decode()
    assert "model.created" not in html
    assert ModelTag.objects.filter(model=model).exists()


def test_csv_streams_a_chunk_at_a_time_with_the_same_content(client_for, owner, model, monkeypatch):
    factories.version(model, owner, metrics=[{"name": "f1", "value": 0.8, "split": "test"}])
    bulk_versions(model, owner, 20, metrics=("accuracy", "loss"))
    url = reverse("models_app:versions_csv", args=[model.slug])
    whole = client_for(owner).get(url)
    assert whole.streaming
    monkeypatch.setattr("models_app.views.browse.CSV_CHUNK", 7)
    pieces = list(client_for(owner).get(url).streaming_content)
    assert len(pieces) == 1 + 3  # the header, then 21 versions in chunks of 7
    assert b"".join(pieces) == b"".join(whole.streaming_content)
    rows = list(csv.reader(io.StringIO(b"".join(pieces).decode())))
    assert rows[0][6:] == ["accuracy (test)", "f1 (test)", "loss (test)"]
    assert rows[1][6:] == ["", "0.8", ""] and [r[0] for r in rows[1:]] == [
        str(n) for n in range(1, 22)
    ]
