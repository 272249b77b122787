"""Concurrency faults on PostgreSQL, with real threads each on its own connection, through the
JSON API as clients send them:

F9 50 concurrent creates on one model; F10 concurrent approve/reject, two concurrent
promotions; F12 a create retried with the same Idempotency-Key (also while the first is still
running, and with another body); F13 two clients creating the same model name.

Each FAULT_RUNS times, varied (metadata sizes, which decision or alias, how many clients),
with the invariant checker after each. They need PostgreSQL's concurrent writers (SQLite has
one writer: requests queue instead of racing), so they run in CI's PostgreSQL pass."""

import json
import threading

import pytest
from django.db import connection  # noqa: F401 (used by the skipif condition)
from django.test import Client

from approvals import services as approvals
from approvals.models import Alias, Review
from models_app.models import ModelVersion, RegisteredModel
from registry_site.api.models import IdempotencyKey
from registry_site.tokens import token_create
from tests import factories
from tests.concurrency import run_at_once
from tests.faults.conftest import RUNS, check

pytestmark = [
    pytest.mark.usefixtures("fault_storage"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs concurrent writers"),
]


_made = iter(range(1, 10**6))


def client_of(user) -> Client:
    _, secret = token_create(actor=user, user=user, name=f"t-{next(_made)}", scope="write")
    return Client(headers={"Authorization": f"Bearer {secret}"})


def post(client: Client, url: str, body: dict, **headers):
    return client.post(url, json.dumps(body), content_type="application/json", headers=headers)


def statuses(results) -> list:
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    return sorted(r.status_code for r in results)


def good_metadata(run: int, i: int) -> dict:
    return {
        "description": f"run {run} client {i}",
        "metrics": [
            {"name": f"m{j}", "value": j / 10, "split": "test"} for j in range(1 + (i + run) % 5)
        ],
        "datasets": [{"name": "claims", "role": "train"}],
        "params": {"seed": str(i)},
    }


@pytest.fixture
def team(owner):
    """A model with an editor, two reviewers and two promoters."""
    model = factories.registered_model(owner, "fraud")
    people = {}
    for name, role in [("editor", "edit"), ("r1", "review"), ("r2", "review"),
                       ("p1", "promote"), ("p2", "promote")]:  # fmt: skip
        people[name] = factories.user(name)
        factories.grant(people[name], model, role)
    return model, people


# ---------------------------------------------------------------------------------------------
# F9


@pytest.mark.parametrize("run", RUNS)
def test_f9_fifty_concurrent_creates_on_one_model(run, team):
    model, people = team
    clients = [client_of(people["editor"]) for _ in range(5)]
    url = f"/api/v1/models/{model.name}/versions"
    results = run_at_once(50, lambda i: post(clients[i % 5], url, good_metadata(run, i)))
    assert statuses(results) == [201] * 50
    numbers = sorted(r.json()["number"] for r in results)
    assert numbers == list(range(1, 51))
    assert ModelVersion.objects.filter(model=model).count() == 50
    check("F9 50 concurrent creates on one model")


# ---------------------------------------------------------------------------------------------
# F10


def _in_review(model, people, run: int) -> ModelVersion:
    version = factories.version(
        model, people["editor"], files={"model.bin": b"w" * (run + 1)}, **good_metadata(run, 0)
    )
    approvals.version_submit(actor=people["editor"], version=version)
    return version


@pytest.mark.parametrize("run", RUNS)
def test_f10_concurrent_approve_and_reject(run, team):
    model, people = team
    version = _in_review(model, people, run)
    url = f"/api/v1/models/{model.name}/versions/{version.number}"
    # approve/reject, reject/approve, approve/approve (quorum one: the second finds it decided)
    first, second = [("approve", "reject"), ("reject", "approve"), ("approve", "approve")][run % 3]
    actions = [(people["r1"], first), (people["r2"], second)]
    clients = [client_of(who) for who, _ in actions]
    seen = clients[0].get(url).json()["content_digest"]  # what both reviewers read

    def decide(i):
        action = actions[i][1]
        body = {"reason": "looks wrong"} if action == "reject" else {}
        return post(clients[i], f"{url}/{action}", body | {"content_digest": seen})

    results = run_at_once(2, decide)
    assert statuses(results) == [200, 409]
    loser = next(r for r in results if r.status_code == 409)
    assert "only versions in review can be" in loser.json()["error"]["message"]
    version.refresh_from_db()
    assert version.status in ("approved", "rejected")
    assert Review.objects.filter(version=version).count() == 1
    check("F10 concurrent approve/reject and promotions")


@pytest.mark.parametrize("run", RUNS)
def test_f10_two_concurrent_promotions_of_one_version(run, team):
    model, people = team
    version = _in_review(model, people, run)
    approvals.review_approve(actor=people["r1"], version=version)
    alias = ["production", "staging"][run % 2]
    clients = [client_of(people["p1"]), client_of(people["p2"])]
    url = f"/api/v1/models/{model.name}/aliases/{alias}"

    def promote(i):
        return clients[i].put(
            url, json.dumps({"version": version.number}), content_type="application/json"
        )

    results = run_at_once(2, promote)
    assert statuses(results) == [200, 409]
    loser = next(r for r in results if r.status_code == 409)
    assert "already points at" in loser.json()["error"]["message"]
    assert Alias.objects.get(model=model, name=alias).version == version
    check("F10 concurrent approve/reject and promotions")


# ---------------------------------------------------------------------------------------------
# F12


@pytest.mark.parametrize("run", RUNS)
def test_f12_a_retried_create_with_one_key_makes_one_version(run, team):
    model, people = team
    client = client_of(people["editor"])
    url = f"/api/v1/models/{model.name}/versions"
    key = {"Idempotency-Key": f"create-{run}"}
    body = good_metadata(run, 1)
    first = post(client, url, body, **key)
    # The answer was lost: the client retries, once or a few times.
    retries = [post(client, url, body, **key) for _ in range(1 + run % 3)]
    assert first.status_code == 201
    assert all(r.status_code == 201 and r.json() == first.json() for r in retries)
    assert all(r["Idempotent-Replayed"] == "true" for r in retries)
    other = post(client, url, {**body, "description": "another"}, **key)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert ModelVersion.objects.filter(model=model).count() == 1
    check("F12 retried create with one Idempotency-Key")


@pytest.mark.parametrize("run", RUNS)
def test_f12_a_key_still_in_flight_answers_409(run, team, monkeypatch):
    model, people = team
    client = client_of(people["editor"])
    url = f"/api/v1/models/{model.name}/versions"
    key = {"Idempotency-Key": f"slow-{run}"}
    body = good_metadata(run, 2)
    # The first request holds its claim while the retry arrives: it waits in the middle of its
    # transaction until the retry has been answered.
    from models_app import services

    real_create = services.version_create
    claimed, answered = threading.Event(), threading.Event()

    def slow_create(**kwargs):
        claimed.set()
        answered.wait(timeout=20)
        return real_create(**kwargs)

    monkeypatch.setattr(services, "version_create", slow_create)

    def call(i):
        if i == 1:
            claimed.wait(timeout=20)
            try:
                return post(client, url, body, **key)
            finally:
                answered.set()
        return post(client, url, body, **key)

    first, retry = run_at_once(2, call)
    assert first.status_code == 201, first.content
    assert retry.status_code == 409, retry.content
    assert retry.json()["error"]["code"] == "idempotency_in_progress"
    again = post(client, url, body, **key)  # later, the retry gets the first answer
    assert again.status_code == 201 and again.json() == first.json()
    assert ModelVersion.objects.filter(model=model).count() == 1
    assert IdempotencyKey.objects.count() == 1
    check("F12 retried create with one Idempotency-Key")


# ---------------------------------------------------------------------------------------------
# F13


@pytest.mark.parametrize("run", RUNS)
def test_f13_clients_creating_one_model_name_at_once(run, db):
    n = 2 + run % 3
    users = [factories.user(f"u{i}") for i in range(n)]
    clients = [client_of(u) for u in users]
    # The same name, spelled as each client would (case, separators): one name key.
    names = ["Fraud Detector", "fraud-detector", "FRAUD_DETECTOR", "fraud detector"]
    results = run_at_once(n, lambda i: post(clients[i], "/api/v1/models", {"name": names[i]}))
    assert statuses(results) == [201] + [409] * (n - 1), [r.content for r in results]
    assert RegisteredModel.objects.count() == 1
    check("F13 two clients create the same model name")
