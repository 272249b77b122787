"""manage.py seed_scale: a registry loaded in bulk is one the app accepts (invariants, audit
chain, content digests), with the personas bench/pages.py signs in as."""

import random

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from approvals import services as approvals
from approvals.models import Alias, AliasAssignment, Review
from audit.chain import verify_chain
from audit.models import AuditEvent
from models_app.access import Role, roles_for, visible_models
from models_app.digest import content_digest
from models_app.models import ModelVersion, RegisteredModel, VersionDataset
from registry_site import invariants
from registry_site.demo import scale
from registry_site.demo.users import DEMO_PASSWORD

pytestmark = pytest.mark.django_db
S = ModelVersion.Status
SIZES = {"models": 100, "versions": 4, "big_model": 200}


@pytest.fixture
def seeded(capsys) -> str:
    call_command("seed_scale", **SIZES)
    return capsys.readouterr().out


def test_loads_the_sizes_asked_and_a_registry_that_holds_its_invariants(seeded):
    assert RegisteredModel.objects.count() == 101
    assert ModelVersion.objects.count() == 100 * 4 + 200
    assert RegisteredModel.objects.get(name=scale.BIG_MODEL).versions.count() == 200
    assert set(ModelVersion.objects.values_list("status", flat=True)) == set(S.values)
    assert invariants.check_all() == []  # numbers, aliases, every state's audit event, chain
    assert verify_chain().ok
    assert AuditEvent.objects.order_by("-seq").first().action == "scale.seeded"
    assert "Loaded in" in seeded and DEMO_PASSWORD in seeded


def test_each_version_carries_what_the_app_would_have_recorded(seeded):
    decided = list(ModelVersion.objects.exclude(status__in=[S.DRAFT, S.IN_REVIEW]))
    for version in random.Random(1).sample(decided, 40):
        assert version.content_digest == content_digest(version)
        assert version.metrics.count() == 4
        assert version.params.count() == 3
        review = Review.objects.get(version=version)
        assert review.content_digest == version.content_digest
        assert not version.contributors.filter(user=review.reviewer).exists()
        assert Role.REVIEW in roles_for(review.reviewer, version.model)
    assert not ModelVersion.objects.filter(status=S.DRAFT).exclude(content_digest="").exists()
    for alias in Alias.objects.select_related("version"):
        assert alias.protected and alias.version.status == S.APPROVED
        assert AliasAssignment.objects.filter(model=alias.model, alias_name=alias.name).exists()
    assert VersionDataset.objects.filter(dataset__name=scale.BIG_TRAIN).count() == 200


def test_the_reviewer_sees_a_fraction_and_may_review_it(seeded):
    reviewer = User.objects.get(username=scale.REVIEWER)
    visible = visible_models(reviewer)
    assert 0.05 <= visible.count() / RegisteredModel.objects.count() <= 0.10
    reviewable = [m for m in visible if Role.REVIEW in roles_for(reviewer, m)]
    assert len(reviewable) >= 0.05 * RegisteredModel.objects.count()
    pending = ModelVersion.objects.filter(model__in=reviewable, status=S.IN_REVIEW).first()
    # The seeded policies require signatures, as new models' policies do: the reviewer signs.
    review = approvals.review_approve(
        actor=reviewer,
        version=pending,
        content_digest=pending.content_digest,
        signature=approvals.SignatureInput(
            password=DEMO_PASSWORD, meaning="Approved for production use"
        ),
    )
    assert review.decision == Review.Decision.APPROVE
    assert invariants.check_all() == []


def test_the_personas_sign_in_with_the_demo_password(seeded):
    admin = User.objects.get(username=scale.ADMIN)
    assert admin.is_superuser
    for name in (scale.ADMIN, scale.REVIEWER):
        client = Client()
        response = client.post(reverse("login"), {"username": name, "password": DEMO_PASSWORD})
        assert response.status_code == 302
        assert client.get(reverse("models_app:model_list")).status_code == 200


@pytest.mark.django_db(transaction=True)  # --reset empties tables (TRUNCATE on PostgreSQL)
def test_a_second_load_is_refused_unless_reset(seeded):
    with pytest.raises(CommandError, match="already holds a scale seed"):
        call_command("seed_scale", models=2, versions=2)
    call_command("seed_scale", models=3, versions=2, reset=True)
    assert RegisteredModel.objects.count() == 3
    assert invariants.check_all() == []


def test_sizes_must_be_positive():
    with pytest.raises(CommandError, match="must be 1 or more"):
        call_command("seed_scale", models=0, versions=2)
