"""The invariant the MLflow answer cache relies on, stated through every interface that writes.

registry_site/mlflow_compat/cache.py keeps the answers of registered-models/get,
model-versions/get, registered-models/alias (GET) and each model's entry of
registered-models/search in each worker, keyed by the model's newest audit event. That is
correct only if every write that changes one of those answers moves the model's audit head
(appends an audit event of that model) in the same transaction. Each row of WRITES is one
write path: a dashboard form, a JSON API route, an MLflow API call or a management command.
For each, the test

- reads every answer with the cache on (it starts empty, so they are built fresh and kept),
- performs the write, noting each SQL statement and the transaction block it runs in,
- reads the answers again with the cache off: wherever a model's answers changed, its newest
  audit event must be a new one (and the row says whether it expects a change at all),
- reads them with the cache on: the cached path must give the fresh answers,
- checks that every statement writing a table the answers are read from ran inside a
  transaction block that also appended an audit event, so no reader can see the change under
  the old head, nor the new head without the change.

The registry the writes start from is built once for the module; each test's write is rolled
back with the test. A new write path is one more row.
"""

import io
import json
import re
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Max
from django.test import Client, override_settings

from approvals import services as approvals
from approvals.models import Alias
from audit import chain
from audit.models import AuditEvent
from models_app.models import ModelTag, ModelVersion, RegisteredModel, VersionTag
from registry_site.tokens import token_create
from tests import factories
from tests.models_app.test_model_settings import model_data
from tests.models_app.test_register import edit_data, version_data

pytestmark = pytest.mark.django_db

MLFLOW = "/api/2.0/mlflow"
API = "/api/v1/models"
V = "/models/fraud/versions/"  # the dashboard's pages of fraud's versions
CACHE_SECONDS = 30

# ---------------------------------------------------------------------------------------------
# The registry every write starts from


@dataclass
class World:
    """``fraud``: v1 approved (production before v2), v2 approved (production), v3 in review,
    v4 a draft with a tag, a file and the alias ``champ``, v5 a bare draft; editor registered
    them all. ``churn``: a bystander with one draft, so a write that changes a model it does not
    name shows up too. Each persona has a signed-in session (the dashboard, and the MLflow API
    as a script calls it) and a write token for the JSON API, as pipelines call it."""

    users: dict[str, User]
    model: RegisteredModel
    other: RegisteredModel
    tmp_path: Path
    audit_head: int = 0
    clients: dict[tuple[str, str], Client] = field(default_factory=dict)

    def browser(self, who: str) -> Client:
        return self.clients["browser", who]

    def api(self, who: str) -> Client:
        return self.clients["api", who]

    def file(self, name: str, content: bytes) -> Path:
        path = self.tmp_path / "incoming" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(content)
        return path


def build_world(tmp_path: Path) -> World:
    users = {
        name: factories.user(name) for name in ("owner", "editor", "reviewer", "promoter", "viewer")
    }
    users["root"] = factories.user("root", is_superuser=True, is_staff=True)
    owner, editor, reviewer, promoter = (
        users[n] for n in ("owner", "editor", "reviewer", "promoter")
    )
    model = factories.registered_model(
        owner, "fraud", description="Flags card payments.", tags={"domain": "payments"}
    )
    for who, role in (("editor", "edit"), ("reviewer", "review"), ("promoter", "promote"),
                      ("viewer", "view")):  # fmt: skip
        factories.grant(users[who], model, role)
    approvals.policy_update(
        actor=owner, model=model, required_approvals=1, require_description=False,
        require_training_dataset=False, require_metrics=False, verify_artifacts=False,
    )  # fmt: skip

    def submitted(**metadata) -> ModelVersion:
        version = factories.version(model, editor, **metadata)
        return approvals.version_submit(actor=editor, version=version)

    for number in (1, 2):
        version = submitted(description=f"Retrain {number}.")
        approvals.review_approve(actor=reviewer, version=version, reason="fine")
        approvals.alias_set(actor=promoter, model=model, name="production", version=version)
    submitted(description="Retrain 3.")
    draft = factories.version(
        model, editor, description="Retrain 4.", tags={"team": "risk"},
        files={"model.bin": b"weights"},
    )  # fmt: skip
    approvals.alias_set(actor=editor, model=model, name="champ", version=draft)
    factories.version(model, editor)
    other = factories.registered_model(owner, "churn")
    factories.version(other, owner, description="Churn 1.")
    world = World(users=users, model=model, other=other, tmp_path=tmp_path)
    for who, user in users.items():
        world.clients["browser", who] = browser = Client()
        browser.force_login(user)
        _, secret = token_create(actor=user, user=user, name="pipeline", scope="write")
        world.clients["api", who] = Client(headers={"Authorization": f"Bearer {secret}"})
    world.audit_head = AuditEvent.objects.aggregate(Max("seq"))["seq__max"]
    return world


@pytest.fixture(scope="module")
def built_world(django_db_setup, django_db_blocker, tmp_path_factory):
    """The world, built once for this module in a transaction rolled back after its last
    test; each test runs in a savepoint inside it, like Django's ``setUpTestData``. A write
    moves the world on only until its test ends."""
    tmp_path = tmp_path_factory.mktemp("world")
    for folder in ("artifacts", "spool"):
        (tmp_path / folder).mkdir()
    storages = {
        **django_settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "artifacts"},
        },
    }
    with (
        django_db_blocker.unblock(),
        override_settings(STORAGES=storages, FILE_UPLOAD_TEMP_DIR=str(tmp_path / "spool")),
        transaction.atomic(),
    ):
        yield build_world(tmp_path)
        transaction.set_rollback(True)


@pytest.fixture
def world(built_world, db) -> World:
    # What an earlier test wrote was rolled back with it (every write appends an event).
    assert AuditEvent.objects.aggregate(Max("seq"))["seq__max"] == built_world.audit_head
    for client in built_world.clients.values():  # only the session outlives a test
        for name in set(client.cookies) - {django_settings.SESSION_COOKIE_NAME}:
            del client.cookies[name]
    return built_world


# ---------------------------------------------------------------------------------------------
# Performing writes


def expect(response, status: int):
    assert response.status_code == status, (response.status_code, response.content[:500])
    return response


def digest_of(number: int):
    """A form value read when the write runs: the content digest a reviewer of fraud vN sees."""
    return lambda w: ModelVersion.objects.get(model__slug="fraud", number=number).content_digest


def filled(data: dict | None, w) -> dict:
    return {k: v(w) if callable(v) else v for k, v in (data or {}).items()}


def dashboard(who: str, path: str, data=None, status: int = 302):
    """POST a dashboard form as ``who``."""
    return lambda w: expect(w.browser(who).post(path, filled(data, w)), status)


def api(who: str, method: str, path: str, data=None, status: int = 200):
    """Call the JSON API as ``who`` (``data``: a JSON body)."""

    def call(w: World):
        body = "" if data is None else json.dumps(filled(data, w))
        client = w.api(who)
        response = client.generic(method, API + path, body, content_type="application/json")
        return expect(response, status)

    return call


def mlflow(who: str, method: str, path: str, data: dict, status: int = 200):
    """Call the MLflow API as ``who`` (a JSON body; GET is not a write)."""
    body = json.dumps(data)

    def call(w: World):
        response = w.browser(who).generic(
            method, MLFLOW + path, body, content_type="application/json"
        )
        return expect(response, status)

    return call


def command(*args: str | Callable[[World], str]):
    """Run a management command; an argument may be computed from the world (a file)."""

    def call(w: World):
        out = io.StringIO()
        call_command(*[a(w) if callable(a) else a for a in args], stdout=out, stderr=io.StringIO())
        return out.getvalue()

    return call


def both(*steps: Callable[[World], object]):
    return lambda w: [step(w) for step in steps]


def edit_form(**fields):
    """The model's settings form as the dashboard posts it back, with ``fields`` changed."""
    values = {
        "name": "fraud",
        "description": "Flags card payments.",
        "tags": [("domain", "payments")],
    }
    return model_data(**(values | fields))


def version_edit_form(number: int, **fields):
    """The draft's edit form as the dashboard posts it back, with ``fields`` changed."""

    def call(w: World):
        version = ModelVersion.objects.get(model=w.model, number=number)
        return dashboard("editor", f"{V}{number}/edit/", edit_data(version, **fields))(w)

    return call


def upload(who: str, path: str, content: bytes, status: int):
    def call(w: World):
        response = w.api(who).generic(
            "PUT", API + path, content, content_type="application/octet-stream"
        )
        return expect(response, status)

    return call


def stage_file(w: World):
    response = w.browser("editor").generic(
        "PUT", "/api/2.0/mlflow-artifacts/artifacts/registry/fraud/run-1/model.bin", b"staged",
        content_type="application/octet-stream",
    )  # fmt: skip
    return expect(response, 200)


def exported(w: World) -> str:
    archive = w.tmp_path / "fraud.tar"
    command("export_registry", str(archive), "--models", "fraud")(w)
    return str(archive)


CSV_ROW = "model,version,description,metric:auc\nfraud,2026-05,From the sheet,0.9\n"


@dataclass(frozen=True)
class Write:
    interface: str
    action: str
    perform: Callable[[World], object]
    changes: bool  # whether it changes an answer about ``fraud`` (the test checks it does)

    def __str__(self) -> str:
        return f"{self.interface}: {self.action}"


STAGE = "/model-versions/transition-stage"
WRITES = [
    # The dashboard's forms.
    Write("dashboard", "edit description and tags", dashboard("owner", "/models/fraud/edit/",
          edit_form(description="Flags payments.", tags=[("domain", "cards")])), True),
    Write("dashboard", "save settings unchanged", dashboard("owner", "/models/fraud/edit/",
          edit_form()), False),
    # Not shown by MLflow, but it moves last_updated_timestamp.
    Write("dashboard", "change visibility", dashboard("owner", "/models/fraud/edit/",
          edit_form(visibility="internal")), True),
    Write("dashboard", "rename", dashboard("owner", "/models/fraud/edit/",
          edit_form(name="fraud-v2")), True),
    Write("dashboard", "register a version", dashboard("editor", "/models/fraud/versions/new/",
          version_data(description="Retrain 6.", files={"m.bin": b"w6"})), True),
    Write("dashboard", "edit a draft", version_edit_form(4, description="Retrain 4, again."),
          True),
    Write("dashboard", "add a file to a draft", dashboard("editor", V + "4/files/add/",
          {"files": [SimpleUploadedFile("extra.bin", b"more")]}), False),
    Write("dashboard", "remove a file from a draft", dashboard("editor",
          V + "4/files/delete/model.bin"), False),
    Write("dashboard", "write a draft's model card", dashboard("editor", V + "4/card/edit/",
          {"notes": "Scores payments.", "intended_use": "Card payments."}), False),
    Write("dashboard", "submit", dashboard("editor", V + "4/submit/"), True),
    Write("dashboard", "withdraw", dashboard("editor", V + "3/withdraw/", {"reason": "oops"}),
          True),
    Write("dashboard", "approve", dashboard("reviewer", V + "3/approve/",
          {"reason": "ok", "content_digest": digest_of(3)}), True),
    Write("dashboard", "reject", dashboard("reviewer", V + "3/reject/",
          {"reason": "no", "content_digest": digest_of(3)}), True),
    Write("dashboard", "comment", dashboard("viewer", V + "3/comments/", {"body": "Why?"}), False),
    Write("dashboard", "archive", dashboard("owner", V + "1/archive/", {"reason": "old"}), True),
    Write("dashboard", "move production", dashboard("promoter", "/models/fraud/aliases/set/",
          {"alias": "production", "version": "1"}), True),
    Write("dashboard", "set an alias", dashboard("editor", "/models/fraud/aliases/set/",
          {"alias": "champ", "version": "5"}), True),
    Write("dashboard", "roll production back", dashboard("promoter",
          "/models/fraud/aliases/rollback/", {"alias": "production", "reason": "bad"}), True),
    Write("dashboard", "delete an alias", dashboard("editor",
          "/models/fraud/aliases/champ/delete/"), True),
    Write("dashboard", "delete a draft", dashboard("editor", V + "5/delete/"), True),
    Write("dashboard", "delete the model", dashboard("owner", "/models/fraud/delete/",
          {"confirm": "fraud"}), True),
    Write("dashboard", "share with a user", dashboard("owner", "/models/fraud/sharing/",
          {"kind": "user", "name": "viewer", "roles": ["edit"]}), False),
    Write("dashboard", "unshare", dashboard("owner", "/models/fraud/sharing/remove/",
          {"kind": "user", "name": "viewer"}), False),
    Write("dashboard", "change the review policy", dashboard("owner", "/models/fraud/policy/",
          {"required_approvals": "2", "card_required": ["intended_use"]}), False),
    Write("dashboard", "create another model", dashboard("owner", "/models/new/",
          model_data("router")), False),
    Write("dashboard", "register a dataset", dashboard("editor", "/datasets/new/",
          {"name": "claims"}), False),
    Write("admin", "save the model's change page", lambda w: dashboard("root",
          f"/admin/models_app/registeredmodel/{w.model.pk}/change/", {"_save": "Save"})(w),
          False),
    # The JSON API.
    Write("api", "update description and tags", api("owner", "PATCH", "/fraud",
          {"description": "Flags payments.", "tags": {"domain": "cards"}}), True),
    Write("api", "update with unchanged values", api("owner", "PATCH", "/fraud",
          {"description": "Flags card payments.", "tags": {"domain": "payments"}}), False),
    Write("api", "change visibility", api("owner", "PATCH", "/fraud",
          {"visibility": "internal"}), True),
    Write("api", "rename", api("owner", "PATCH", "/fraud", {"name": "fraud-v2"}), True),
    Write("api", "create another model", api("owner", "POST", "", {"name": "router"}, 201),
          False),
    Write("api", "register a version", api("editor", "POST", "/fraud/versions",
          {"description": "Retrain 6."}, 201), True),
    Write("api", "edit a draft", api("editor", "PATCH", "/fraud/versions/4",
          {"description": "Retrain 4, again.", "tags": {"team": "ops"}}), True),
    Write("api", "upload a file to a draft", upload("editor", "/fraud/versions/4/files/x.bin",
          b"more", 201), False),
    Write("api", "delete a file of a draft", api("editor", "DELETE",
          "/fraud/versions/4/files/model.bin", status=204), False),
    Write("api", "delete a draft", api("editor", "DELETE", "/fraud/versions/5", status=204), True),
    Write("api", "submit", api("editor", "POST", "/fraud/versions/4/submit"), True),
    Write("api", "withdraw", api("editor", "POST", "/fraud/versions/3/withdraw",
          {"reason": "oops"}), True),
    Write("api", "approve", api("reviewer", "POST", "/fraud/versions/3/approve",
          {"content_digest": digest_of(3)}), True),
    Write("api", "reject", api("reviewer", "POST", "/fraud/versions/3/reject",
          {"reason": "no", "content_digest": digest_of(3)}), True),
    Write("api", "archive", api("owner", "POST", "/fraud/versions/1/archive", {}), True),
    Write("api", "comment", api("viewer", "POST", "/fraud/versions/3/comments",
          {"body": "Why?"}, 201), False),
    Write("api", "move production", api("promoter", "PUT", "/fraud/aliases/production",
          {"version": 1}), True),
    Write("api", "roll production back", api("promoter", "POST",
          "/fraud/aliases/production/rollback", {"reason": "bad"}), True),
    Write("api", "delete an alias", api("editor", "DELETE", "/fraud/aliases/champ", status=204),
          True),
    Write("api", "share with a user", api("owner", "PUT", "/fraud/sharing/users/viewer",
          {"roles": ["edit"]}), False),
    Write("api", "unshare", api("owner", "DELETE", "/fraud/sharing/users/viewer", status=204),
          False),
    Write("api", "delete the model", api("owner", "DELETE", "/fraud", status=204), True),
    Write("api", "register a dataset", lambda w: expect(w.api("owner").post(
          "/api/v1/datasets", {"name": "claims"}, content_type="application/json"), 201), False),
    # The MLflow API's writes.
    Write("mlflow", "update the description", mlflow("owner", "PATCH",
          "/registered-models/update", {"name": "fraud", "description": "Flags payments."}), True),
    Write("mlflow", "update with the same description", mlflow("owner", "PATCH",
          "/registered-models/update", {"name": "fraud", "description": "Flags card payments."}),
          False),
    Write("mlflow", "rename", mlflow("owner", "POST", "/registered-models/rename",
          {"name": "fraud", "new_name": "fraud-v2"}), True),
    Write("mlflow", "set a model tag", mlflow("owner", "POST", "/registered-models/set-tag",
          {"name": "fraud", "key": "risk", "value": "high"}), True),
    Write("mlflow", "set a model tag to its value", mlflow("owner", "POST",
          "/registered-models/set-tag", {"name": "fraud", "key": "domain", "value": "payments"}),
          False),
    Write("mlflow", "delete a model tag", mlflow("owner", "DELETE",
          "/registered-models/delete-tag", {"name": "fraud", "key": "domain"}), True),
    Write("mlflow", "delete a missing model tag", mlflow("owner", "DELETE",
          "/registered-models/delete-tag", {"name": "fraud", "key": "nope"}), False),
    Write("mlflow", "set an alias", mlflow("editor", "POST", "/registered-models/alias",
          {"name": "fraud", "alias": "champ", "version": "3"}), True),
    Write("mlflow", "set an alias where it is", mlflow("editor", "POST",
          "/registered-models/alias", {"name": "fraud", "alias": "champ", "version": "4"}),
          False),
    Write("mlflow", "delete an alias", mlflow("editor", "DELETE", "/registered-models/alias",
          {"name": "fraud", "alias": "champ"}), True),
    Write("mlflow", "create another model", mlflow("owner", "POST", "/registered-models/create",
          {"name": "router"}), False),
    Write("mlflow", "delete the model", mlflow("owner", "DELETE", "/registered-models/delete",
          {"name": "fraud"}), True),
    Write("mlflow", "register a version from an external URI", mlflow("editor", "POST",
          "/model-versions/create", {"name": "fraud", "source": "s3://bucket/fraud/6"}), True),
    Write("mlflow", "stage a file", stage_file, False),
    Write("mlflow", "stage a file and delete it", both(stage_file, lambda w: expect(
          w.browser("editor").delete("/api/2.0/mlflow-artifacts/artifacts/registry/fraud/run-1/"),
          200)), False),
    Write("mlflow", "register a version from staged files", both(stage_file, mlflow("editor",
          "POST", "/model-versions/create",
          {"name": "fraud", "source": "mlflow-artifacts:/registry/fraud/run-1"})), True),
    Write("mlflow", "update a draft's description", mlflow("editor", "PATCH",
          "/model-versions/update", {"name": "fraud", "version": "4", "description": "x"}), True),
    Write("mlflow", "set a version tag", mlflow("editor", "POST", "/model-versions/set-tag",
          {"name": "fraud", "version": "4", "key": "team", "value": "ops"}), True),
    Write("mlflow", "delete a version tag", mlflow("editor", "DELETE",
          "/model-versions/delete-tag", {"name": "fraud", "version": "4", "key": "team"}), True),
    Write("mlflow", "delete a draft with its alias", mlflow("editor", "DELETE",
          "/model-versions/delete", {"name": "fraud", "version": "4"}), True),
    Write("mlflow", "transition to Staging", mlflow("promoter", "POST", STAGE,
          {"name": "fraud", "version": "1", "stage": "Staging"}), True),
    Write("mlflow", "transition to Production, archiving the old one", mlflow("owner", "POST",
          STAGE, {"name": "fraud", "version": "1", "stage": "Production",
                  "archive_existing_versions": True}), True),
    Write("mlflow", "transition to Archived", mlflow("owner", "POST", STAGE,
          {"name": "fraud", "version": "1", "stage": "Archived"}), True),
    Write("mlflow", "transition to None", mlflow("promoter", "POST", STAGE,
          {"name": "fraud", "version": "2", "stage": "None"}), True),
    # Management commands.
    Write("command", "register_version", command("register_version", "fraud",
          lambda w: str(w.file("model.onnx", b"onnx")), "--as", "editor"), True),
    Write("command", "import_csv", command("import_csv",
          lambda w: str(w.file("versions.csv", CSV_ROW.encode())), "--as", "editor"), True),
    Write("command", "import_registry keeps an existing model", lambda w: command(
          "import_registry", exported(w), "--on-conflict", "skip")(w), False),
    Write("command", "sweep_orphans", command("sweep_orphans", "--min-age-minutes", "0"), False),
    Write("command", "seed_demo", command("seed_demo", "--quiet-logins"), False),
    Write("command", "create_token", command("create_token", "editor", "--name", "ci"), False),
    Write("command", "deliver_webhooks", command("deliver_webhooks", "--once"), False),
]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Reading the answers


def read(client: Client, path: str, **params) -> tuple[int, dict]:
    response = client.get(MLFLOW + path, params)
    return response.status_code, response.json()


@dataclass(frozen=True)
class Tracked:
    """A model whose answers the test compares: the name it was created with, and the versions
    and aliases asked about (one version past the newest, for a row that registers one)."""

    name: str
    versions: range
    aliases: tuple[str, ...]


def answers(w: World, tracked: dict[int, Tracked]) -> dict[int, dict]:
    """Every cached MLflow answer about each tracked model, read as the owner, who may view
    them all."""
    reader = w.browser("owner")
    _, page = read(reader, "/registered-models/search", max_results="100")
    page = {entry["name"]: entry for entry in page.get("registered_models", [])}
    names = dict(RegisteredModel.objects.filter(pk__in=tracked).values_list("pk", "name"))
    found = {}
    for pk, t in tracked.items():
        name = names.get(pk, t.name)  # a deleted model: its old name answers 404
        found[pk] = {
            "search": page.get(name),
            "model": read(reader, "/registered-models/get", name=name),
            **{
                f"v{n}": read(reader, "/model-versions/get", name=name, version=str(n))
                for n in t.versions
            },
            **{
                f"@{alias}": read(reader, "/registered-models/alias", name=name, alias=alias)
                for alias in t.aliases
            },
        }
    return found


def audit_heads(pks) -> dict[int, int | None]:
    rows = AuditEvent.objects.filter(model_id__in=pks).values("model_id").annotate(head=Max("seq"))
    return {pk: None for pk in pks} | {row["model_id"]: row["head"] for row in rows}


# ---------------------------------------------------------------------------------------------
# Watching the transactions of a write

ANSWER_TABLES = {
    m._meta.db_table for m in (RegisteredModel, ModelTag, ModelVersion, VersionTag, Alias)
}
AUDIT_TABLE = AuditEvent._meta.db_table
WRITTEN = re.compile(
    r"(?:\bINSERT\s+INTO|(?<!FOR\s)(?<!KEY\s)\bUPDATE|\bDELETE\s+FROM)\s+[\"`]?(\w+)", re.I
)


@dataclass
class Statement:
    sql: str
    tables: set[str]
    block: int | None  # the write's outermost atomic block it ran in (None: outside any)


class TransactionLog:
    """The statements a write runs, each with the outermost transaction block (counted from
    the write's start) it runs in. The test itself runs inside a transaction that is rolled
    back, so a block of the write is one level below the depth at which the write starts;
    in production it is the transaction itself."""

    def __init__(self):
        self.base = len(connection.atomic_blocks)
        self.blocks = 0
        self.statements: list[Statement] = []

    def entered(self, atomic) -> None:
        if atomic.using in (None, connection.alias) and (
            len(connection.atomic_blocks) == self.base + 1
        ):
            self.blocks += 1

    def __call__(self, execute, sql, params, many, context):
        tables = {name.lower() for name in WRITTEN.findall(sql)}
        block = self.blocks if len(connection.atomic_blocks) > self.base else None
        self.statements.append(Statement(sql, tables, block))
        return execute(sql, params, many, context)

    def unaudited_writes(self) -> list[Statement]:
        """Statements writing an answer table outside a block that appends an audit event."""
        audited = {s.block for s in self.statements if AUDIT_TABLE in s.tables}
        return [
            s
            for s in self.statements
            if s.tables & ANSWER_TABLES and (s.block is None or s.block not in audited)
        ]


@contextmanager
def watching_transactions():
    log = TransactionLog()
    enter = transaction.Atomic.__enter__

    def entering(atomic):
        enter(atomic)
        log.entered(atomic)

    with pytest.MonkeyPatch.context() as patch, connection.execute_wrapper(log):
        patch.setattr(transaction.Atomic, "__enter__", entering)
        yield log


# ---------------------------------------------------------------------------------------------
# The invariant


@pytest.mark.parametrize("write", WRITES, ids=str)
def test_a_write_that_changes_an_answer_moves_the_audit_head_in_its_transaction(
    world, write, settings
):
    tracked = {
        world.model.pk: Tracked("fraud", range(1, 7), ("production", "staging", "champ", "latest")),
        world.other.pk: Tracked("churn", range(1, 3), ("latest",)),
    }
    settings.REGISTRY_MLFLOW_CACHE_SECONDS = CACHE_SECONDS  # empty: answers are built and kept
    before = answers(world, tracked)
    heads = audit_heads(tracked)

    with watching_transactions() as log:
        write.perform(world)

    settings.REGISTRY_MLFLOW_CACHE_SECONDS = 0
    after = answers(world, tracked)
    moved = audit_heads(tracked)
    changed = {pk for pk in tracked if after[pk] != before[pk]}
    for pk in changed:
        assert moved[pk] is not None and (heads[pk] is None or moved[pk] > heads[pk]), (
            f"{write} changed the answers about {tracked[pk].name} without an audit event of it: "
            + ", ".join(q for q in before[pk] if after[pk][q] != before[pk][q])
        )
    assert (world.model.pk in changed) == write.changes, (
        f"{write} was expected {'to' if write.changes else 'not to'} change fraud's answers"
    )
    if write.changes:  # the log saw the write (the pattern finds the tables on this backend)
        assert any(s.tables & ANSWER_TABLES for s in log.statements)
    assert not log.unaudited_writes(), "\n".join(s.sql for s in log.unaudited_writes())

    settings.REGISTRY_MLFLOW_CACHE_SECONDS = CACHE_SECONDS
    assert answers(world, tracked) == after, f"{write}: the cache served an old answer"


def test_the_log_sees_a_write_outside_an_audited_transaction(world):
    """The transaction check above can fail: a tag written in a block of its own, then an
    audit event in another, is reported."""
    with watching_transactions() as log:
        with transaction.atomic():
            ModelTag.objects.create(model=world.model, key="sneaky", value="1")
        with transaction.atomic():
            chain.record(actor=None, action="model.updated", target=world.model, model=world.model)
    assert [s.tables & ANSWER_TABLES for s in log.unaudited_writes()] == [{ModelTag._meta.db_table}]
