"""The whole story through the API, as the tools would tell it: a training pipeline registers a
model and a version, uploads two files and submits; a reviewer approves; a promoter promotes; a
deployment tool resolves production and downloads files whose SHA-256 match the record."""

import hashlib
import json
import os

import pytest
import requests
from django.test import Client

from approvals.models import Signature
from audit.chain import verify_chain
from audit.models import AuditEvent
from registry_site.tokens import token_create
from tests import factories

pytestmark = pytest.mark.django_db

FILES = {
    "model/weights.bin": os.urandom(1024 * 1024 + 3),
    "model/config.json": b'{"depth": 6}',
}


def token_client(user, scope: str = "write") -> Client:
    _, secret = token_create(actor=user, user=user, name=f"{user}-{scope}", scope=scope)
    return Client(headers={"Authorization": f"Bearer {secret}"})


def post(client, url, body=None):
    return client.post(url, json.dumps(body or {}), content_type="application/json")


def fetch(client: Client, url: str) -> bytes:
    """Follow a download URL: the API's own (test client) or a presigned S3 URL."""
    if url.startswith("http://testserver/"):
        response = client.get(url.removeprefix("http://testserver"))
        assert response.status_code in (200, 302), response.content
        if response.status_code == 302:
            url = response["Location"]
        else:
            assert response["X-Content-Type-Options"] == "nosniff"
            return b"".join(response.streaming_content)
    got = requests.get(url, timeout=10)
    assert got.status_code == 200
    return got.content


@pytest.mark.parametrize("where", ["local", "s3"])
def test_pipeline_review_promotion_and_deployment(where, request):
    if where == "s3":
        request.getfixturevalue("s3_storage")
    pipeline_user = factories.user("pipeline")
    reviewer, promoter = factories.user("reviewer"), factories.user("promoter")
    deployer_user = factories.user("deployer")
    pipeline = token_client(pipeline_user)

    # The pipeline registers the model (becoming its manager) and shares it.
    created = post(pipeline, "/api/v1/models", {"name": "fraud", "description": "Card fraud."})
    assert created.status_code == 201
    for user, role in ((reviewer, "review"), (promoter, "promote"), (deployer_user, "view")):
        shared = pipeline.put(
            f"/api/v1/models/fraud/sharing/users/{user.username}",
            json.dumps({"roles": [role]}),
            content_type="application/json",
        )
        assert shared.status_code == 200, shared.content

    # A version with its metadata, two files streamed, then submitted.
    version = post(
        pipeline,
        "/api/v1/models/fraud/versions",
        {
            "description": "Retrained on Q1.",
            "framework": "xgboost",
            "metrics": [{"name": "auc", "value": 0.91, "split": "test"}],
            "datasets": [{"name": "payments-q1", "role": "train"}],
            "source": {"run": "runs/42", "commit": "abc123"},
        },
    )
    assert version.status_code == 201, version.content
    number = version.json()["number"]
    base = f"/api/v1/models/fraud/versions/{number}"
    for path, content in FILES.items():
        put = pipeline.put(f"{base}/files/{path}", content, content_type="application/octet-stream")
        assert put.status_code == 201, put.content
        assert put.json()["sha256"] == hashlib.sha256(content).hexdigest()
    assert post(pipeline, f"{base}/submit").json()["status"] == "in_review"

    # A reviewer approves; the pipeline cannot approve its own version.
    assert post(pipeline, f"{base}/approve").status_code == 403
    # The reviewer checks what they approve: the manifest hashes to the recorded digest (as
    # docs/content-digest.md says), and its files are the ones the pipeline uploaded.
    reviewing = token_client(reviewer)
    reading = reviewing.get(f"{base}/manifest").json()
    canonical = json.dumps(
        reading["manifest"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    seen = "sha256:" + hashlib.sha256(canonical).hexdigest()
    assert seen == reading["content_digest"] == reading["current_digest"]
    assert {f["path"]: f["sha256"] for f in reading["manifest"]["files"]} == {
        path: hashlib.sha256(content).hexdigest() for path, content in FILES.items()
    }
    approved = post(
        reviewing,
        f"{base}/approve",
        # New models' policies require signatures: the reviewer signs with their password.
        {
            "reason": "AUC up, data ok.",
            "content_digest": seen,
            "password": factories.PASSWORD,
            "meaning": "Reviewed — technical",
        },
    )
    assert approved.status_code == 200, approved.content
    assert approved.json()["version"]["status"] == "approved"

    # A promoter promotes it to production.
    promoted = token_client(promoter).put(
        "/api/v1/models/fraud/aliases/production",
        json.dumps(
            {
                "version": number,
                "note": "Q1 release",
                "password": factories.PASSWORD,
                "meaning": "Released for use under this alias",
            }
        ),
        content_type="application/json",
    )
    assert promoted.status_code == 200, promoted.content

    # The deployment tool (a read-only token) resolves production and verifies each file.
    deployer = token_client(deployer_user, scope="read")
    assert post(deployer, f"{base}/comments", {"body": "hi"}).status_code == 403  # read-only
    resolved = deployer.get("/api/v1/models/fraud/aliases/production/resolve")
    assert resolved.status_code == 200, resolved.content
    body = resolved.json()
    assert body["version"]["number"] == number
    assert body["approval"]["reviews"][0]["reviewer"] == "reviewer"
    assert body["approval"]["reviews"][0]["reason"] == "AUC up, data ok."
    assert sorted(f["path"] for f in body["files"]) == sorted(FILES)
    for file in body["files"]:
        content = fetch(deployer, file["download_url"])
        assert hashlib.sha256(content).hexdigest() == file["sha256"]
        assert content == FILES[file["path"]]
        assert len(content) == file["size"]

    actions = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
    for action in ("model.created", "version.created", "artifact.added", "version.submitted",
                   "review.approved", "version.approved", "alias.moved"):  # fmt: skip
        assert action in actions
    assert list(Signature.objects.values_list("signer__username", "action")) == [
        ("reviewer", "approve"),
        ("promoter", "promote"),
    ]
    assert verify_chain().ok
