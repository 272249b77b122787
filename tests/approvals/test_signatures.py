"""Electronic signatures (issue 14, part 2): approving, rejecting, moving production or staging
and rolling back are signed with the signer's password and a meaning, where the model's review
policy requires it (docs/signatures.md)."""

from datetime import UTC, datetime, timedelta

import pytest
from axes.models import AccessAttempt
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from approvals import services
from approvals.models import Alias, AliasAssignment, Review, ReviewPolicy, Signature
from audit.models import AuditEvent, FailedSignIn
from core.errors import Conflict
from models_app.models import ModelVersion
from tests import factories
from tests.approvals.conftest import good_version

pytestmark = pytest.mark.django_db
S = ModelVersion.Status
APPROVAL = "Reviewed — technical"


@pytest.fixture
def signed_model(model):
    ReviewPolicy.objects.filter(model=model).update(signatures_required=True)
    return model


@pytest.fixture
def submitted(signed_model, editor):
    version = good_version(signed_model, editor)
    return services.version_submit(actor=editor, version=version)


def sign(meaning=APPROVAL, password=factories.PASSWORD):
    return services.SignatureInput(password=password, meaning=meaning)


def counts():
    return (
        Review.objects.count(),
        Signature.objects.count(),
        AliasAssignment.objects.count(),
        list(ModelVersion.objects.order_by("pk").values_list("status", flat=True)),
    )


def test_new_models_require_signatures_and_the_defaults_are_the_issues_lists(owner):
    from models_app import services as catalogue

    model = catalogue.model_create(actor=owner, name="brand-new")
    policy = services.policy_update(actor=owner, model=model, required_approvals=1)
    assert policy.signatures_required and not policy.machine_decisions_allowed
    assert policy.approval_meanings == [
        "Approved for production use",
        "Reviewed — technical",
        "Reviewed — risk and compliance",
    ]


def test_a_signed_approval_records_who_when_what_and_the_audit_event_it_was_signed_with(
    submitted, reviewer
):
    reviewer.first_name, reviewer.last_name = "Rita", "Reviewer"
    reviewer.save()
    before = datetime.now(UTC) - timedelta(seconds=5)
    review = services.review_approve(
        actor=reviewer, version=submitted, reason="Looks right.", signature=sign()
    )
    signature = Signature.objects.get()
    event = AuditEvent.objects.get(action="review.approved")
    assert signature.review == review and signature.version == submitted
    assert signature.signer == reviewer and signature.printed_name == "Rita Reviewer"
    assert signature.action == Signature.Action.APPROVE
    assert signature.meaning == APPROVAL and signature.reason == "Looks right."
    assert signature.content_digest == submitted.content_digest == review.content_digest
    assert (signature.audit_seq, signature.audit_hash) == (event.seq, event.hash)
    # The chain holds the manifestation: the same meaning, name and database time.
    assert event.after["signature_meaning"] == APPROVAL
    assert event.after["signer_name"] == "Rita Reviewer"
    assert datetime.fromisoformat(event.after["signed_at"]) == signature.signed_at
    assert before <= signature.signed_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert signature.signed_at.utcoffset() == timedelta(0)
    assert signature.model_name == "fraud" and signature.version_number == submitted.number


def test_the_printed_name_falls_back_to_the_username(submitted, reviewer):
    services.review_approve(actor=reviewer, version=submitted, signature=sign())
    assert Signature.objects.get().printed_name == "reviewer"


def test_signing_time_is_the_databases_clock_not_pythons(submitted, reviewer, monkeypatch):
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: datetime(2001, 1, 1, tzinfo=UTC))
    services.review_approve(actor=reviewer, version=submitted, signature=sign())
    assert Signature.objects.get().signed_at.year >= 2025


def test_a_missing_signature_is_refused_naming_the_password_field(submitted, reviewer):
    before = counts()
    with pytest.raises(ValidationError) as refused:
        services.review_approve(actor=reviewer, version=submitted)
    assert "password" in refused.value.message_dict
    assert counts() == before


def test_a_meaning_outside_the_policys_list_is_refused_naming_the_choices(submitted, reviewer):
    before = counts()
    with pytest.raises(ValidationError) as refused:
        services.review_approve(
            actor=reviewer, version=submitted, signature=sign("Looks fine to me")
        )
    message = " ".join(refused.value.message_dict["meaning"])
    assert "Approved for production use" in message and "Reviewed — technical" in message
    assert counts() == before
    with pytest.raises(ValidationError):  # an approval meaning does not sign a rejection
        services.review_reject(
            actor=reviewer, version=submitted, reason="No.", signature=sign(APPROVAL)
        )


def test_a_wrong_password_records_nothing_but_an_audit_event_and_a_failed_sign_in(
    submitted, reviewer
):
    before = counts()
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as refused:
        services.review_approve(actor=reviewer, version=submitted, signature=sign(password="x"))
    assert "password" in refused.value.message_dict
    assert counts() == before
    refusal = AuditEvent.objects.filter(seq__gt=events).exclude(action="auth.sign_in_failed")
    assert [e.action for e in refusal] == ["signature.refused"]
    assert refusal[0].actor == reviewer and refusal[0].after["action"] == "approve"
    assert FailedSignIn.objects.get(user=reviewer).failures == 1
    assert AccessAttempt.objects.get(username="reviewer").failures_since_start == 1


def test_wrong_passwords_lock_signing_out_even_with_the_right_password(
    submitted, reviewer, settings, client
):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        with pytest.raises(ValidationError):
            services.review_approve(
                actor=reviewer, version=submitted, signature=sign(password="wrong")
            )
    with pytest.raises(ValidationError) as refused:
        services.review_approve(actor=reviewer, version=submitted, signature=sign())
    assert "Too many failed sign-ins" in " ".join(refused.value.message_dict["password"])
    assert not Signature.objects.exists() and not Review.objects.exists()
    # The same lockout as the sign-in page: the account cannot sign in either.
    response = client.post(
        reverse("login"), {"username": "reviewer", "password": factories.PASSWORD}
    )
    assert response.status_code == 429


def test_a_signed_rejection(submitted, reviewer):
    review = services.review_reject(
        actor=reviewer, version=submitted, reason="Recall too low.",
        signature=sign("Rejected — evidence insufficient"),
    )  # fmt: skip
    signature = Signature.objects.get()
    assert signature.review == review and signature.action == Signature.Action.REJECT
    event = AuditEvent.objects.get(action="review.rejected")
    assert signature.audit_hash == event.hash
    assert event.after["signature_meaning"] == "Rejected — evidence insufficient"


def test_promotion_and_rollback_are_signed(signed_model, editor, reviewer, reviewer2, promoter):
    versions = []
    for auc in (0.9, 0.91):
        v = services.version_submit(actor=editor, version=good_version(signed_model, editor, auc))
        services.review_approve(actor=reviewer, version=v, signature=sign())
        versions.append(v)
    with pytest.raises(ValidationError):
        services.alias_set(actor=promoter, model=signed_model, name="production", version=v)
    for v in versions:
        services.alias_set(
            actor=promoter, model=signed_model, name="production", version=v,
            signature=sign("Released for use under this alias"),
        )  # fmt: skip
    entry = services.alias_rollback(
        actor=promoter, model=signed_model, reason="Regression in the field.",
        signature=sign("Rolled back to the previous version"),
    )  # fmt: skip
    moves = Signature.objects.filter(action__in=["promote", "rollback"]).order_by("pk")
    assert [(s.action, s.alias_name, s.version_number) for s in moves] == [
        ("promote", "production", versions[0].number),
        ("promote", "production", versions[1].number),
        ("rollback", "production", versions[0].number),
    ]
    rollback = moves.last()
    assert rollback.alias_assignment == entry and rollback.reason == "Regression in the field."
    assert rollback.content_digest == versions[0].content_digest
    event = AuditEvent.objects.get(action="alias.rolled_back")
    assert (rollback.audit_seq, rollback.audit_hash) == (event.seq, event.hash)
    # Ordinary aliases are not signatures.
    services.alias_set(actor=editor, model=signed_model, name="champion", version=versions[1])
    assert Signature.objects.count() == 5


def test_policies_without_signatures_decide_as_before(model, editor, reviewer):
    v = services.version_submit(actor=editor, version=good_version(model, editor))
    services.review_approve(actor=reviewer, version=v)
    assert not Signature.objects.exists()
    assert "signature_meaning" not in AuditEvent.objects.get(action="review.approved").after


def test_machine_decisions_need_the_policy_and_are_never_signatures(submitted, reviewer, owner):
    with pytest.raises(ValidationError) as refused:
        services.review_approve(actor=reviewer, version=submitted, via_token="ci (abc)")
    assert "token alone cannot sign" in " ".join(refused.value.message_dict["password"])
    ReviewPolicy.objects.filter(model=submitted.model).update(machine_decisions_allowed=True)
    review = services.review_approve(actor=reviewer, version=submitted, via_token="ci (abc)")
    assert review.via_token == "ci (abc)" and not Signature.objects.exists()
    event = AuditEvent.objects.get(action="review.approved")
    assert event.after["via_token"] == "ci (abc)" and "signature_meaning" not in event.after


def test_signatures_cannot_be_edited_or_deleted_through_the_orm(submitted, reviewer):
    services.review_approve(actor=reviewer, version=submitted, signature=sign())
    signature = Signature.objects.get()
    signature.meaning = "Something else"
    with pytest.raises(ValueError, match="never edited"):
        signature.save()
    with pytest.raises(ValueError, match="never deleted"):
        signature.delete()
    assert Signature.objects.get().meaning == APPROVAL


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_on_postgresql_raw_sql_cannot_edit_or_delete_a_signature(submitted, reviewer):
    services.review_approve(actor=reviewer, version=submitted, signature=sign())
    pk = Signature.objects.get().pk
    for statement in (
        "UPDATE approvals_signature SET meaning = 'forged' WHERE id = %s",
        "UPDATE approvals_signature SET review_id = NULL, printed_name = 'x' WHERE id = %s",
        "DELETE FROM approvals_signature WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="never edited or deleted"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [pk])
    assert Signature.objects.get().meaning == APPROVAL


# ---------------------------------------------------------------------------------------------
# The dashboard


def review_url(version):
    return f"{version.get_absolute_url()}review/"


def test_the_review_page_asks_for_password_and_meaning_and_says_what_signing_means(
    submitted, reviewer, client_for
):
    reviewer.first_name, reviewer.last_name = "Rita", "Reviewer"
    reviewer.save()
    page = client_for(reviewer).get(review_url(submitted)).content.decode()
    assert 'autocomplete="current-password"' in page
    assert "By entering your password you sign this decision as <strong>Rita Reviewer</strong>" in (
        page
    )
    assert '<option value="Reviewed — risk and compliance">' in page
    assert '<option value="Rejected — not fit for use">' in page


def test_signing_on_the_review_page(submitted, reviewer, client_for):
    client = client_for(reviewer)
    url = reverse("approvals:approve", args=[submitted.model.slug, submitted.number])
    response = client.post(
        url,
        {
            "content_digest": submitted.content_digest,
            "password": factories.PASSWORD,
            "meaning": APPROVAL,
        },
    )
    assert response.status_code == 302
    page = client.get(review_url(submitted)).content.decode()
    signature = Signature.objects.get()
    assert f"Signed by <strong>reviewer</strong>, {signature.signed_at:%Y-%m-%d %H:%M:%S} UTC" in (
        page
    )
    assert APPROVAL in page


@pytest.mark.parametrize(
    ("password", "meaning", "message"),
    [
        ("", "", "requires an electronic signature"),
        ("wrong-password", APPROVAL, "That password is not correct"),
        (factories.PASSWORD, "Whatever", "Choose the meaning of your signature"),
    ],
)
def test_a_refused_signature_rerenders_the_form_with_the_reason(
    submitted, reviewer, client_for, password, meaning, message
):
    before = counts()
    response = client_for(reviewer).post(
        reverse("approvals:approve", args=[submitted.model.slug, submitted.number]),
        {"content_digest": submitted.content_digest, "password": password, "meaning": meaning},
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert 'name="password"' in response.content.decode()
    assert counts() == before


def test_promote_and_rollback_forms_sign(signed_model, editor, reviewer, promoter, client_for):
    client = client_for(promoter)
    for auc in (0.9, 0.91):
        v = services.version_submit(actor=editor, version=good_version(signed_model, editor, auc))
        services.review_approve(actor=reviewer, version=v, signature=sign())
        page = client.get(reverse("approvals:aliases", args=[signed_model.slug])).content.decode()
        assert 'id="id_promote_password"' in page
        response = client.post(
            reverse("approvals:alias_set", args=[signed_model.slug]),
            {
                "alias": "production",
                "version": v.number,
                "password": factories.PASSWORD,
                "meaning": "Released for use under this alias",
            },
        )
        assert response.status_code == 302
    page = client.get(signed_model.get_absolute_url()).content.decode()
    assert 'id="id_rollback_password"' in page
    unsigned = client.post(
        reverse("approvals:rollback", args=[signed_model.slug]),
        {"alias": "production", "reason": "Field regression"},
    )
    assert unsigned.status_code == 400
    response = client.post(
        reverse("approvals:rollback", args=[signed_model.slug]),
        {
            "alias": "production",
            "reason": "Field regression",
            "password": factories.PASSWORD,
            "meaning": "Rolled back to the previous version",
        },
    )
    assert response.status_code == 302
    assert list(Signature.objects.values_list("action", flat=True)) == [
        "approve", "promote", "approve", "promote", "rollback",
    ]  # fmt: skip
    assert Alias.objects.get(model=signed_model, name="production").version.number == 1


def test_managers_set_signatures_on_the_policy_page(model, owner, client_for):
    response = client_for(owner).post(
        reverse("approvals:policy", args=[model.slug]),
        {
            "required_approvals": "1",
            "signatures_required": "on",
            "machine_decisions_allowed": "on",
            "approval_meanings": "Approved\r\nChecked by risk\r\n",
            "rejection_meanings": "Rejected",
            "promotion_meanings": "Released",
        },
    )
    assert response.status_code == 302
    policy = ReviewPolicy.objects.get(model=model)
    assert policy.signatures_required and policy.machine_decisions_allowed
    assert policy.approval_meanings == ["Approved", "Checked by risk"]
    event = AuditEvent.objects.filter(action="policy.updated").last()
    assert event.before["signatures_required"] is False
    assert event.after["approval_meanings"] == ["Approved", "Checked by risk"]
    empty = client_for(owner).post(
        reverse("approvals:policy", args=[model.slug]),
        {"required_approvals": "1", "approval_meanings": "", "rejection_meanings": "R",
         "promotion_meanings": "P"},
    )  # fmt: skip
    assert empty.status_code == 400
    assert "signature meanings for approvals" in empty.content.decode()
    kept = ReviewPolicy.objects.get(model=model).approval_meanings
    assert kept == ["Approved", "Checked by risk"]


def test_a_revalidation_round_is_signed(submitted, reviewer, reviewer2):
    services.review_approve(actor=reviewer, version=submitted, signature=sign())
    before = counts()
    with pytest.raises(ValidationError) as refused:
        services.review_revalidate(actor=reviewer2, version=submitted, decision="approve")
    assert "password" in refused.value.message_dict
    assert counts() == before
    review = services.review_revalidate(
        actor=reviewer2, version=submitted, decision="approve",
        signature=sign("Reviewed — risk and compliance"),
    )  # fmt: skip
    assert review.round == 1 and review.signature.meaning == "Reviewed — risk and compliance"
    latest = AuditEvent.objects.filter(action="review.approved").order_by("seq").last()
    assert review.signature.audit_hash == latest.hash
    rejection = services.review_revalidate(
        actor=reviewer, version=submitted, decision="reject", reason="Drifted.",
        signature=sign("Rejected — not fit for use"),
    )  # fmt: skip
    event = AuditEvent.objects.get(action="version.revalidation_rejected")
    assert rejection.signature.audit_seq == event.seq
    assert event.after["signature_meaning"] == "Rejected — not fit for use"


# ---------------------------------------------------------------------------------------------
# Removing production or staging is signed as moving them is


RELEASED = "Released for use under this alias"


@pytest.fixture
def in_production(signed_model, editor, reviewer, promoter):
    v = services.version_submit(actor=editor, version=good_version(signed_model, editor))
    services.review_approve(actor=reviewer, version=v, signature=sign())
    services.alias_set(
        actor=promoter, model=signed_model, name="production", version=v, signature=sign(RELEASED)
    )
    return ModelVersion.objects.get(pk=v.pk)


def test_removing_production_unsigned_or_with_a_wrong_password_records_nothing(
    in_production, promoter
):
    model = in_production.model
    before, events = counts(), AuditEvent.objects.count()
    with pytest.raises(ValidationError) as refused:
        services.alias_delete(actor=promoter, model=model, name="production")
    assert "password" in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:  # an approval meaning does not sign it
        services.alias_delete(actor=promoter, model=model, name="production", signature=sign())
    assert "Released for use under this alias" in " ".join(refused.value.message_dict["meaning"])
    assert AuditEvent.objects.count() == events
    with pytest.raises(ValidationError) as refused:
        services.alias_delete(
            actor=promoter, model=model, name="production",
            signature=sign(RELEASED, password="not-mine"),
        )  # fmt: skip
    assert "That password is not correct" in " ".join(refused.value.message_dict["password"])
    assert counts() == before
    assert Alias.objects.filter(model=model, name="production").exists()
    refusal = AuditEvent.objects.filter(seq__gt=events).exclude(action="auth.sign_in_failed")
    assert [(e.action, e.after["action"]) for e in refusal] == [("signature.refused", "remove")]
    assert FailedSignIn.objects.get(user=promoter).failures == 1


def test_removing_production_with_the_password_records_a_signature_that_verifies(
    in_production, promoter
):
    from io import StringIO

    from django.core.management import call_command

    from registry_site import invariants

    promoter.first_name, promoter.last_name = "Pat", "Promoter"
    promoter.save()
    model = in_production.model
    services.alias_delete(
        actor=promoter, model=model, name="production", note="Withdrawn from service.",
        signature=sign(RELEASED),
    )  # fmt: skip
    assert not Alias.objects.filter(model=model, name="production").exists()
    entry = AliasAssignment.objects.get(kind=AliasAssignment.Kind.REMOVE)
    signature = Signature.objects.get(action=Signature.Action.REMOVE)
    event = AuditEvent.objects.get(action="alias.removed")
    assert signature.alias_assignment == entry and signature.alias_name == "production"
    assert signature.version == in_production and signature.version_number == in_production.number
    assert signature.content_digest == in_production.content_digest
    assert signature.printed_name == "Pat Promoter" and signature.meaning == RELEASED
    assert signature.reason == "Withdrawn from service." == event.reason
    assert (signature.audit_seq, signature.audit_hash) == (event.seq, event.hash)
    assert event.after["signature_meaning"] == RELEASED and event.after["alias"] == "production"
    assert event.before == {"alias": "production", "version": in_production.number}
    out = StringIO()
    call_command("verify_signatures", stdout=out)
    assert "Signatures OK: 3 verified." in out.getvalue()  # approval, move, removal
    assert invariants.check_signatures() == []
    assert invariants.check_all(verify_digests=False) == []


def test_removing_an_ordinary_alias_is_not_signed(in_production, editor):
    model = in_production.model
    services.alias_set(actor=editor, model=model, name="champion", version=in_production)
    services.alias_delete(actor=editor, model=model, name="champion")
    assert not Signature.objects.filter(action=Signature.Action.REMOVE).exists()
    assert AuditEvent.objects.get(action="alias.removed").after is None


def test_a_removal_signed_for_one_version_does_not_remove_another(
    in_production, editor, reviewer, promoter, monkeypatch
):
    """Between signing (before the transaction) and removing, production moved: the
    signature named the version it left, so the removal is refused and nothing changes."""
    from approvals.services import signatures

    model = in_production.model
    v2 = services.version_submit(actor=editor, version=good_version(model, editor, 0.93))
    services.review_approve(actor=reviewer, version=v2, signature=sign())
    real = signatures.signature_verify

    def verify_then_someone_moves_production(**kwargs):
        verified = real(**kwargs)
        if kwargs["action"] == Signature.Action.REMOVE:
            monkeypatch.setattr(signatures, "signature_verify", real)
            services.alias_set(
                actor=promoter, model=model, name="production", version=v2,
                signature=sign(RELEASED),
            )  # fmt: skip
        return verified

    monkeypatch.setattr(signatures, "signature_verify", verify_then_someone_moves_production)
    before = counts()
    with pytest.raises(Conflict, match="moved to version 2 since you signed"):
        services.alias_delete(
            actor=promoter, model=model, name="production", signature=sign(RELEASED)
        )
    assert Alias.objects.get(model=model, name="production").version == v2
    assert counts()[1] == before[1] + 1  # only the move's signature


def test_the_aliases_page_removes_production_with_a_signature(in_production, promoter, client_for):
    model = in_production.model
    client = client_for(promoter)
    page = client.get(reverse("approvals:aliases", args=[model.slug])).content.decode()
    url = reverse("approvals:alias_delete", args=[model.slug, "production"])
    assert f'action="{url}"' in page and 'id="id_remove_production_password"' in page
    before = counts()
    unsigned = client.post(url, {"note": "Retired"})
    assert unsigned.status_code == 400
    assert "requires an electronic signature" in unsigned.content.decode()
    wrong = client.post(url, {"note": "Retired", "password": "nope", "meaning": RELEASED})
    assert wrong.status_code == 400 and "That password is not correct" in wrong.content.decode()
    assert counts() == before
    response = client.post(
        url, {"note": "Retired", "password": factories.PASSWORD, "meaning": RELEASED}
    )
    assert response.status_code == 302
    assert not Alias.objects.filter(model=model, name="production").exists()
    signature = Signature.objects.get(action=Signature.Action.REMOVE)
    # The version page's Decisions table shows the removal with its signature, as it does moves.
    html = client.get(in_production.get_absolute_url()).content.decode()
    table = html[html.index('id="decisions"') :]
    table = table[: table.index("</table>")]
    row = table[table.index("production removed from here") :]
    row = row[: row.index("</tr>")]
    assert f'data-signature="{signature.pk}"' in row and RELEASED in row
    assert 'class="bad small"' not in row  # it verifies
    sheet = client.get(
        reverse("approvals:signatures", args=[model.slug, in_production.number])
    ).content.decode()
    assert f'id="signature-{signature.pk}"' in sheet


def test_a_viewer_sees_no_remove_form(in_production, viewer, client_for):
    factories.grant(viewer, in_production.model, "view")
    page = (
        client_for(viewer)
        .get(reverse("approvals:aliases", args=[in_production.model.slug]))
        .content.decode()
    )
    assert "Remove production" not in page
