"""Model cards: written while a version is a draft, frozen afterwards, required sections in
the documentation gate, and exported as the document an auditor asks for."""

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from approvals import services as reviews
from approvals.models import Review, ReviewPolicy
from approvals.services import GateFailure
from audit.models import AuditEvent
from core.errors import Conflict
from models_app import services
from models_app.models import Artifact, CardTemplate, Metric, ModelCard, VersionParent
from tests import factories
from tests.models_app.test_browse import bulk_versions
from tests.models_app.test_register import use_local_storage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    return use_local_storage(settings, tmp_path)


SECTIONS = {
    "intended_use": "Scoring card payments in real time.",
    "out_of_scope": "Credit decisions.",
    "training_data": "Q1 transactions.",
    "evaluation": "AUC 0.91 on the holdout.",
    "ethical_considerations": "Merchants in small towns are under-represented.",
    "caveats": "Retrain monthly.",
}


@pytest.fixture
def model(owner, editor, reviewer, viewer):
    m = factories.registered_model(owner, "fraud")
    factories.grant(editor, m, "edit")
    factories.grant(reviewer, m, "review")
    factories.grant(viewer, m, "view")
    return m


@pytest.fixture
def version(model, editor):
    return factories.version(
        model,
        editor,
        description="Retrained on Q1",
        metrics=[{"name": "auc", "value": 0.91, "split": "test"}],
        datasets=[{"name": "claims|2025", "role": "train", "uri": "s3://d/claims"}],
        files={"model.bin": b"weights"},
    )


def url(name, version, *extra):
    return reverse(f"models_app:{name}", args=[version.model.slug, version.number, *extra])


# ---------------------------------------------------------------------------------------------
# Editing


def test_editor_writes_a_draft_card_and_the_change_is_audited(client_for, editor, version):
    response = client_for(editor).post(url("card_edit", version), {**SECTIONS, "notes": "**x**"})
    assert response.status_code == 302 and response["Location"] == url("version_card", version)
    card = ModelCard.objects.get(version=version)
    assert card.intended_use == SECTIONS["intended_use"] and card.updated_by == editor
    event = AuditEvent.objects.get(action="card.updated")
    assert event.actor == editor and event.target_id == str(version.pk)
    assert event.before["caveats"] == "" and event.after["caveats"] == "Retrain monthly."
    client_for(editor).post(url("card_edit", version), {**SECTIONS, "notes": "**x**"})
    assert AuditEvent.objects.filter(action="card.updated").count() == 1  # no change, no event


def test_card_markdown_is_sanitised(client_for, editor, viewer, version):
    services.card_update(
        actor=editor,
        version=version,
        sections={"intended_use": "<script>alert(1)</script>[x](javascript:alert(2)) *ok*"},
    )
    html = client_for(viewer).get(url("version_card", version)).content.decode()
    assert "<em>ok</em>" in html
    assert "<script>alert(1)" not in html and "javascript:alert" not in html


def test_a_section_over_the_limit_is_refused_and_nothing_changes(client_for, editor, version):
    services.card_update(actor=editor, version=version, sections={"caveats": "short"})
    response = client_for(editor).post(url("card_edit", version), {"caveats": "x" * 20_001})
    assert response.status_code == 400
    assert "at most 20000 characters" in response.content.decode()
    assert ModelCard.objects.get(version=version).caveats == "short"


def test_the_card_is_frozen_once_the_version_is_submitted(client_for, editor, version):
    services.card_update(actor=editor, version=version, sections={"caveats": "before"})
    reviews.version_submit(actor=editor, version=version)
    page = client_for(editor).get(url("card_edit", version))
    assert page.status_code == 409 and "model card is frozen" in page.content.decode()
    response = client_for(editor).post(url("card_edit", version), {"caveats": "after"})
    assert response.status_code == 409
    assert ModelCard.objects.get(version=version).caveats == "before"
    with pytest.raises(Conflict, match="model card is frozen"):
        services.card_update(actor=editor, version=version, sections={"caveats": "after"})
    card_page = client_for(editor).get(url("version_card", version)).content.decode()
    assert url("card_edit", version) not in card_page


def test_the_service_checks_the_role_itself(viewer, version):
    with pytest.raises(PermissionDenied):
        services.card_update(actor=viewer, version=version, sections={"caveats": "x"})
    assert not ModelCard.objects.exists()


def test_edit_needs_the_edit_role(client_for, viewer, outsider, version):
    assert client_for(viewer).get(url("card_edit", version)).status_code == 403
    assert client_for(outsider).get(url("card_edit", version)).status_code == 404
    assert client_for(viewer).post(url("card_edit", version), SECTIONS).status_code == 403
    assert not ModelCard.objects.exists()


# ---------------------------------------------------------------------------------------------
# The template and the documentation gate


def test_manager_sets_required_sections_on_the_policy_page(client_for, owner, model):
    response = client_for(owner).post(
        reverse("approvals:policy", args=[model.slug]),
        {"required_approvals": "1", "require_description": "on",
         "card_required": ["intended_use", "ethical_considerations"]},
    )  # fmt: skip
    assert response.status_code == 302
    assert CardTemplate.objects.get(model=model).required_sections == [
        "intended_use",
        "ethical_considerations",
    ]
    event = AuditEvent.objects.get(action="card_template.updated")
    assert event.after == {"required_sections": ["intended_use", "ethical_considerations"]}
    page = client_for(owner).get(reverse("approvals:policy", args=[model.slug])).content.decode()
    assert 'value="intended_use" checked' in page and 'value="caveats">' in page


def test_a_bad_policy_post_changes_neither_the_policy_nor_the_template(client_for, owner, model):
    response = client_for(owner).post(
        reverse("approvals:policy", args=[model.slug]),
        {"required_approvals": "3", "card_required": ["intended_use", "horoscope"]},
    )
    assert response.status_code == 400
    assert "Unknown sections: horoscope" in response.content.decode()
    assert not CardTemplate.objects.exists()
    assert ReviewPolicy.objects.get(model=model).required_approvals == 1  # as it was
    assert not AuditEvent.objects.filter(action__in=["policy.updated", "card_template.updated"])


def test_missing_required_sections_fail_the_documentation_gate(
    client_for, owner, editor, reviewer, version
):
    services.card_template_update(
        actor=owner, model=version.model, required_sections=["intended_use", "caveats"]
    )
    services.card_update(actor=editor, version=version, sections={"intended_use": "x"})
    card = client_for(editor).get(url("version_card", version)).content.decode()
    assert "Required sections missing: Caveats and recommendations" in card
    reviews.version_submit(actor=editor, version=version)
    with pytest.raises(GateFailure) as refused:
        reviews.review_approve(actor=reviewer, version=version)
    failed = {r.key: r.detail for r in refused.value.results if not r.passed}
    assert failed == {"model_card": "Missing: Caveats and recommendations."}
    assert not Review.objects.exists()


def test_a_complete_card_passes_the_documentation_gate(owner, editor, reviewer, version):
    services.card_template_update(actor=owner, model=version.model, required_sections=["caveats"])
    services.card_update(actor=editor, version=version, sections={"caveats": "Retrain monthly."})
    reviews.version_submit(actor=editor, version=version)
    reviews.review_approve(actor=reviewer, version=version)
    version.refresh_from_db()
    assert version.status == "approved"
    gates = {g["key"]: g["passed"] for g in Review.objects.get().gates}
    assert gates["model_card"] is True and gates["dangerous_files"] is True


def test_no_template_no_card_gate(editor, reviewer, version):
    reviews.version_submit(actor=editor, version=version)
    reviews.review_approve(actor=reviewer, version=version)
    assert "model_card" not in {g["key"] for g in Review.objects.get().gates}


# ---------------------------------------------------------------------------------------------
# The document: page, Markdown download, printable page


@pytest.fixture
def reviewed(model, owner, editor, reviewer, version):
    services.card_update(actor=editor, version=version, sections=SECTIONS, notes="See *runbook*.")
    reviews.policy_update(
        actor=owner, model=model, required_approvals=1,
        metric_gates=[{"metric": "auc", "split": "test", "threshold": 0.99}],
    )  # fmt: skip
    reviews.version_submit(actor=editor, version=version)
    reviews.review_approve(
        actor=owner, version=version, reason="Good", override_reason="Threshold is aspirational"
    )
    child = factories.version(model, editor, parents=[{"model": "fraud", "version": 1}])
    return version, child


def test_markdown_export_has_everything_an_auditor_asks_for(client_for, viewer, reviewed):
    version, _child = reviewed
    response = client_for(viewer).get(url("card_markdown", version))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="fraud-v1-model-card.md"'
    text = response.content.decode()
    sha = version.artifacts.get().sha256
    for expected in (
        "# Model card: fraud v1",
        "| Status | Approved |",
        "## Intended use\n\nScoring card payments in real time.",
        "## Ethical considerations\n\nMerchants in small towns",
        "## Notes\n\nSee *runbook*.",
        "| auc | test | 0.91 | higher |",
        "| claims\\|2025 | Training | s3://d/claims |",  # a pipe cannot break the table
        "- child: fraud v2 (retrained from this version)",
        "**owner** approved: Good",
        "**Override of failing gates:** Threshold is aspirational",
        "Gates failing at the time: auc on test ≥ 0.99",
        f"| model.bin | 7 | `{sha}` |",
    ):
        assert expected in text, expected


def test_card_page_and_printable_page_show_the_same_document(client_for, viewer, reviewed):
    version, _child = reviewed
    sha = version.artifacts.get().sha256
    for name in ("version_card", "card_print"):
        html = client_for(viewer).get(url(name, version)).content.decode()
        for expected in (
            "Scoring card payments in real time.",
            "Threshold is aspirational",
            sha,
            "claims|2025",
            "fraud v2",
            "<em>runbook</em>",
        ):
            assert expected in html, (name, expected)
    printable = client_for(viewer).get(url("card_print", version)).content.decode()
    assert 'class="mainnav"' not in printable and 'body class="print"' in printable


def test_hidden_children_stay_hidden_in_the_card(client_for, viewer, owner, reviewed):
    version, _child = reviewed
    secret = factories.registered_model(owner, "secret-sauce")
    factories.version(secret, owner, parents=[{"model": "fraud", "version": 1}])
    text = client_for(viewer).get(url("card_markdown", version)).content.decode()
    assert "- child: (hidden version)" in text and "secret-sauce" not in text
    html = client_for(viewer).get(url("version_card", version)).content.decode()
    assert "hidden version" in html and "secret-sauce" not in html


def test_card_page_query_count_is_constant(
    client_for, viewer, owner, reviewed, assert_constant_queries
):
    version, _child = reviewed
    c = client_for(viewer)

    def request():
        assert c.get(url("version_card", version)).status_code == 200

    def grow():
        Metric.objects.bulk_create(
            Metric(version=version, name=f"m{i}", value=i / 10) for i in range(300)
        )
        Artifact.objects.bulk_create(
            Artifact(
                version=version, path=f"f{i}", size=1, sha256="0" * 64, storage_key=f"artifacts/{i}"
            )  # fmt: skip
            for i in range(300)
        )
        children = bulk_versions(version.model, owner, 300)
        VersionParent.objects.bulk_create(
            VersionParent.linking(v, version, "fine_tuned") for v in children
        )

    count = assert_constant_queries(request, grow)
    assert count <= 24, count


# ---------------------------------------------------------------------------------------------
# The demo


def test_the_demo_has_a_complete_and_an_incomplete_card(capsys):
    from django.core.management import call_command

    from approvals.gates import evaluate, policy_for
    from models_app.models import ModelVersion, RegisteredModel

    call_command("seed_demo")
    lite = RegisteredModel.objects.get(slug="ticket-triage-lite")
    v1, v2, v3 = lite.versions.order_by("number")
    assert v1.card.missing(lite.card_template.required_sections) == []
    assert len(v2.card.missing(lite.card_template.required_sections)) == 5
    results = {r.key: r.passed for r in evaluate(v2, policy=policy_for(lite), production=None)}
    assert results["model_card"] is False
    assert v1.aliases.get().name == "production"
    call_command("seed_demo")
    assert ModelVersion.objects.filter(model=lite).count() == 3
    assert ModelCard.objects.filter(version__model=lite).count() == 2
    assert v3 and v3.framework == "scikit-learn"
