import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from registry_site import demo


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_prints_working_logins(capsys):
    call_command("seed_demo")
    first = capsys.readouterr().out
    count = User.objects.count()
    call_command("seed_demo")
    assert User.objects.count() == count
    assert demo.DEMO_PASSWORD in first
    for d in demo.DEMO_USERS:
        assert d.username in first
        assert User.objects.get(username=d.username).check_password(demo.DEMO_PASSWORD)
    assert User.objects.get(username="admin").is_superuser
    assert User.objects.get(username="dana").groups.filter(name="fraud-team").exists()


@pytest.mark.django_db
def test_seed_demo_keeps_a_changed_password(capsys):
    call_command("seed_demo")
    dana = User.objects.get(username="dana")
    dana.set_password("a-new-password-of-danas")
    dana.save()
    call_command("seed_demo")
    assert User.objects.get(username="dana").check_password("a-new-password-of-danas")


@pytest.mark.django_db
def test_seed_demo_builds_a_living_catalogue_with_lineage_and_sharing(capsys):
    from audit.chain import verify_chain
    from models_app.access import Role, roles_for, visible_models
    from models_app.models import RegisteredModel, VersionParent

    call_command("seed_demo")
    fraud = RegisteredModel.objects.get(slug="card-fraud-detector")
    assert fraud.versions.count() == 6
    aucs = [v.metrics.get(name="auc").value for v in fraud.versions.order_by("number")]
    assert aucs != sorted(aucs)  # metrics move both ways, like real retrains
    assert VersionParent.objects.filter(
        relation="fine_tuned", child__model__slug="ticket-router"
    ).exists()
    victor = User.objects.get(username="victor")
    rita = User.objects.get(username="rita")
    outsider_ish = User.objects.get(username="pat")
    assert fraud in visible_models(victor)  # through the fraud team
    assert Role.REVIEW in roles_for(rita, fraud)  # through the model-risk team
    assert Role.EDIT not in roles_for(outsider_ish, fraud)
    assert verify_chain().ok
    call_command("seed_demo")
    assert fraud.versions.count() == 6


@pytest.mark.django_db
def test_seed_demo_tells_a_review_story(capsys):
    from approvals.models import AliasAssignment
    from approvals.selectors import production_of, versions_waiting_for
    from models_app.models import RegisteredModel

    call_command("seed_demo")
    fraud = RegisteredModel.objects.get(slug="card-fraud-detector")
    statuses = dict(fraud.versions.values_list("number", "status"))
    assert statuses == {
        1: "approved",
        2: "approved",
        3: "rejected",
        4: "approved",
        5: "approved",
        6: "in_review",
    }
    assert production_of(fraud).number == 4  # moved to 5, rolled back to 4
    assert AliasAssignment.objects.filter(model=fraud, kind="rollback").count() == 1
    rita = User.objects.get(username="rita")
    assert list(versions_waiting_for(rita).values_list("number", flat=True)) == [6]


@pytest.mark.django_db
def test_the_demos_decisions_are_signatures_with_full_names(capsys):
    from approvals.models import Review, ReviewPolicy, Signature

    call_command("seed_demo")
    assert ReviewPolicy.objects.get(model__slug="card-fraud-detector").signatures_required
    # Every decision but readmission-risk's, dated in the past where no signature can be.
    signed_reviews = Review.objects.exclude(version__model__slug="readmission-risk")
    assert Signature.objects.count() == signed_reviews.count() + 7  # 6 alias moves, 1 rollback
    assert set(Signature.objects.values_list("printed_name", flat=True)) == {
        "Rita Reviewer", "Ravi Reviewer", "Pat Promoter",
    }  # fmt: skip
    rollback = Signature.objects.get(action="rollback")
    assert rollback.meaning == "Rolled back to the previous version"
    assert not signed_reviews.filter(signature__isnull=True).exists()
    assert not ReviewPolicy.objects.get(model__slug="readmission-risk").signatures_required


@pytest.mark.django_db
def test_the_demo_has_an_approval_due_for_revalidation(capsys, client):
    from datetime import timedelta

    from django.utils import timezone

    from approvals import expiry
    from approvals.models import ReviewPolicy
    from approvals.selectors import production_of
    from audit.chain import verify_chain
    from audit.models import AuditEvent
    from models_app.models import ModelVersion, RegisteredModel
    from registry_site import invariants

    call_command("seed_demo")
    model = RegisteredModel.objects.get(slug="readmission-risk")
    assert ReviewPolicy.objects.get(model=model).approval_valid_days == 90
    v2 = production_of(model)
    assert v2.number == 2 and v2.status == "approved"
    assert timezone.now() - v2.decided_at > timedelta(days=119)
    assert v2.created_at < v2.decided_at  # registered, then approved: one dated story
    assert expiry.due_among(ModelVersion.objects.all()) == [v2]  # the only one due
    event = AuditEvent.objects.get(action="version.revalidation_due")
    assert event.actor_username == "registry (scheduled)"
    times = list(AuditEvent.objects.order_by("seq").values_list("created_at", flat=True))
    assert times == sorted(times)  # the chain's times follow its order
    assert verify_chain().ok and invariants.check_signatures() == []

    client.force_login(User.objects.get(username="rita"))
    inbox = client.get("/reviews/").content.decode()
    assert 'id="revalidation-due"' in inbox and "readmission-risk v2" in inbox
    page = client.get(v2.get_absolute_url()).content.decode()
    assert 'class="pill due"' in page[page.index("<h1>") : page.index("</h1>")]
    call_command("seed_demo")  # idempotent: nothing more is recorded
    assert AuditEvent.objects.filter(action="version.revalidation_due").count() == 1
