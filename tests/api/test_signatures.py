"""Electronic signatures through the JSON API (docs/signatures.md): a signature needs the
password in the body; a token alone cannot sign unless the policy allows machine decisions, and
then the decision is recorded as the token's, never as a signature."""

import pytest
from django.test import Client

from approvals import services as workflow
from approvals.models import AliasAssignment, Review, ReviewPolicy, Signature
from audit.models import AuditEvent, FailedSignIn
from models_app.models import ModelVersion
from tests import factories
from tests.api.conftest import error_of, good_version, send

pytestmark = pytest.mark.django_db

V1 = "/api/v1/models/fraud/versions/1"
ALIASES = "/api/v1/models/fraud/aliases"


@pytest.fixture
def signed_model(model):
    ReviewPolicy.objects.filter(model=model).update(signatures_required=True)
    return model


@pytest.fixture
def submitted(signed_model, editor):
    return workflow.version_submit(actor=editor, version=good_version(signed_model, editor))


def test_a_token_alone_cannot_sign(api_client, reviewer, submitted):
    response = send(
        api_client(reviewer), "post", V1 + "/approve",
        {"content_digest": submitted.content_digest},
    )  # fmt: skip
    assert response.status_code == 400
    error = error_of(response)
    assert error["field"] == "password" and "token alone cannot sign" in error["message"]
    assert not Review.objects.exists()
    assert ModelVersion.objects.get().status == "in_review"


def test_password_and_meaning_in_the_body_sign_the_approval(api_client, reviewer, submitted):
    response = send(
        api_client(reviewer), "post", V1 + "/approve",
        {
            "content_digest": submitted.content_digest,
            "password": factories.PASSWORD,
            "meaning": "Reviewed — risk and compliance",
        },
    )  # fmt: skip
    assert response.status_code == 200, response.content
    assert response.json()["review"]["via_token"] is None
    signature = Signature.objects.get()
    assert signature.signer == reviewer and signature.meaning == "Reviewed — risk and compliance"
    assert signature.audit_hash == AuditEvent.objects.get(action="review.approved").hash


def test_a_wrong_password_is_400_records_nothing_and_counts_as_a_failed_sign_in(
    api_client, reviewer, submitted
):
    response = send(
        api_client(reviewer), "post", V1 + "/reject",
        {
            "content_digest": submitted.content_digest,
            "reason": "No.",
            "password": "not-my-password",
            "meaning": "Rejected — not fit for use",
        },
    )  # fmt: skip
    assert response.status_code == 400
    assert error_of(response)["field"] == "password"
    assert not Review.objects.exists() and not Signature.objects.exists()
    assert ModelVersion.objects.get().status == "in_review"
    assert FailedSignIn.objects.get(user=reviewer).failures == 1
    assert AuditEvent.objects.filter(action="signature.refused").count() == 1


def test_a_meaning_outside_the_list_is_400_naming_the_choices(api_client, reviewer, submitted):
    response = send(
        api_client(reviewer), "post", V1 + "/approve",
        {
            "content_digest": submitted.content_digest,
            "password": factories.PASSWORD,
            "meaning": "LGTM",
        },
    )  # fmt: skip
    assert response.status_code == 400
    error = error_of(response)
    assert error["field"] == "meaning" and "Approved for production use" in error["message"]
    assert not Review.objects.exists()


def test_machine_decisions_are_recorded_as_the_tokens_and_never_as_signatures(
    api_client, client_for, reviewer, promoter, submitted
):
    ReviewPolicy.objects.filter(model=submitted.model).update(machine_decisions_allowed=True)
    response = send(
        api_client(reviewer), "post", V1 + "/approve",
        {"content_digest": submitted.content_digest},
    )  # fmt: skip
    assert response.status_code == 200, response.content
    made_by = response.json()["review"]["via_token"]
    assert made_by.startswith("test-write-") and Review.objects.get().via_token == made_by
    moved = send(api_client(promoter), "put", ALIASES + "/production", {"version": 1})
    assert moved.status_code == 200, moved.content
    assert AliasAssignment.objects.get().via_token.startswith("test-write-")
    history = send(api_client(promoter), "get", ALIASES + "/production/history").json()
    assert history["items"][0]["via_token"].startswith("test-write-")
    assert not Signature.objects.exists()
    # The dashboard shows them as the token's.
    page = client_for(reviewer).get(f"{submitted.get_absolute_url()}review/").content.decode()
    assert f"Made by API token {made_by} (not a signature)" in page
    assert "Signed by" not in page
    aliases = client_for(reviewer).get("/models/fraud/aliases/").content.decode()
    assert "(made by API token test-write-" in aliases


def test_a_session_caller_is_no_token_and_must_sign_even_with_machine_decisions(
    reviewer, submitted
):
    ReviewPolicy.objects.filter(model=submitted.model).update(machine_decisions_allowed=True)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(reviewer)
    browser.get("/models/")
    csrf = browser.cookies["csrftoken"].value
    body = {"content_digest": submitted.content_digest}
    response = send(browser, "post", V1 + "/approve", body, X_CSRFToken=csrf)
    assert response.status_code == 400 and error_of(response)["field"] == "password"
    assert not Review.objects.exists()
    body |= {"password": factories.PASSWORD, "meaning": "Reviewed — technical"}
    assert send(browser, "post", V1 + "/approve", body, X_CSRFToken=csrf).status_code == 200
    assert Signature.objects.get().signer == reviewer


def test_alias_moves_and_rollback_are_signed(api_client, editor, reviewer, promoter, signed_model):
    for auc in (0.9, 0.91):
        v = workflow.version_submit(actor=editor, version=good_version(signed_model, editor, auc))
        workflow.review_approve(
            actor=reviewer, version=v, signature=factories.signing("Reviewed — technical")
        )
    token = api_client(promoter)
    unsigned = send(token, "put", ALIASES + "/production", {"version": 1})
    assert unsigned.status_code == 400 and error_of(unsigned)["field"] == "password"
    for n in (1, 2):
        moved = send(
            token, "put", ALIASES + "/production",
            {"version": n, "password": factories.PASSWORD,
             "meaning": "Released for use under this alias"},
        )  # fmt: skip
        assert moved.status_code == 200, moved.content
    rolled = send(
        token, "post", ALIASES + "/production/rollback",
        {"reason": "Regression", "password": factories.PASSWORD,
         "meaning": "Rolled back to the previous version"},
    )  # fmt: skip
    assert rolled.status_code == 200, rolled.content
    assert rolled.json()["version"] == 1
    assert list(
        Signature.objects.filter(action__in=["promote", "rollback"])
        .order_by("pk")
        .values_list("action", "version_number")
    ) == [("promote", 1), ("promote", 2), ("rollback", 1)]
    # Ordinary aliases are not signed.
    assert send(api_client(editor), "put", ALIASES + "/champion", {"version": 2}).status_code == 200
    assert Signature.objects.count() == 5


def test_removing_production_is_signed(api_client, editor, reviewer, promoter, signed_model):
    v = workflow.version_submit(actor=editor, version=good_version(signed_model, editor))
    workflow.review_approve(
        actor=reviewer, version=v, signature=factories.signing("Reviewed — technical")
    )
    released = "Released for use under this alias"
    workflow.alias_set(
        actor=promoter, model=signed_model, name="production", version=v,
        signature=factories.signing(released),
    )  # fmt: skip
    token = api_client(promoter)
    url = ALIASES + "/production?note=Retired"
    unsigned = send(token, "delete", url)  # no body, as before signatures
    assert unsigned.status_code == 400 and error_of(unsigned)["field"] == "password"
    assert "token alone cannot sign" in error_of(unsigned)["message"]
    wrong = send(token, "delete", url, {"password": "not-mine", "meaning": released})
    assert wrong.status_code == 400 and error_of(wrong)["field"] == "password"
    meaning = send(token, "delete", url, {"password": factories.PASSWORD, "meaning": "LGTM"})
    assert meaning.status_code == 400 and error_of(meaning)["field"] == "meaning"
    unknown = send(token, "delete", url, {"password": factories.PASSWORD, "reason": "x"})
    assert unknown.status_code == 400  # unknown fields are refused, nothing removed
    assert send(token, "get", ALIASES + "/production").status_code == 200
    assert not Signature.objects.filter(action="remove").exists()
    assert FailedSignIn.objects.get(user=promoter).failures == 1

    removed = send(token, "delete", url, {"password": factories.PASSWORD, "meaning": released})
    assert removed.status_code == 204, removed.content
    assert send(token, "get", ALIASES + "/production").status_code == 404
    signature = Signature.objects.get(action="remove")
    assert signature.alias_name == "production" and signature.reason == "Retired"
    assert signature.audit_hash == AuditEvent.objects.get(action="alias.removed").hash
    detail = send(token, "get", V1).json()
    assert [s["action"] for s in detail["signatures"]] == ["approve", "promote", "remove"]
    history = send(token, "get", ALIASES + "/production/history").json()
    assert history["items"][0]["kind"] == "remove"


def test_an_ordinary_alias_is_removed_without_a_body(api_client, editor, signed_model):
    v = good_version(signed_model, editor)
    workflow.alias_set(actor=editor, model=signed_model, name="champion", version=v)
    response = send(api_client(editor), "delete", ALIASES + "/champion")
    assert response.status_code == 204
    assert not Signature.objects.exists()


def test_a_token_removes_production_alone_where_machine_decisions_are_allowed(
    api_client, editor, reviewer, promoter, signed_model
):
    ReviewPolicy.objects.filter(model=signed_model).update(machine_decisions_allowed=True)
    v = workflow.version_submit(actor=editor, version=good_version(signed_model, editor))
    workflow.review_approve(actor=reviewer, version=v, via_token="ci (k1)")
    workflow.alias_set(
        actor=promoter, model=signed_model, name="production", version=v, via_token="ci (k1)"
    )
    response = send(api_client(promoter), "delete", ALIASES + "/production")
    assert response.status_code == 204, response.content
    entry = AliasAssignment.objects.get(kind="remove")
    assert entry.via_token.startswith("test-write-") and not Signature.objects.exists()
    event = AuditEvent.objects.get(action="alias.removed")
    assert event.after["via_token"] == entry.via_token
