"""Bad input to the MLflow API, sent as raw HTTP (the MLflow client refuses most of it before
sending): each gets a clear 4xx with a message, and nothing changes."""

import base64
import json

import pytest
from django.db.backends.sqlite3 import _functions as sqlite_functions
from django.test import Client

from audit.models import AuditEvent
from models_app.models import ModelVersion, RegisteredModel
from registry_site.mlflow_compat.models import StagedArtifact
from registry_site.tokens import token_create
from tests import factories

pytestmark = pytest.mark.django_db

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture
def editor_model(editor, owner):
    model = factories.registered_model(owner, "fraud-detector")
    factories.grant(editor, model, "edit")
    factories.version(model, editor, description="first")
    return model


@pytest.fixture
def api(editor):
    """A test client sending ``editor``'s write token, and a snapshot of what exists."""
    secret = token_create(actor=editor, user=editor, name="bad-input", scope="write")[1]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")

    def call(method: str, path: str, body=None, *, raw: bytes | None = None, **extra):
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        return client.generic(method, path, data, content_type="application/json", **extra)

    return call


def state() -> tuple:
    """Everything a bad request could have changed."""
    return (
        list(RegisteredModel.objects.values_list("name", "description", "owner_id")),
        list(ModelVersion.objects.values_list("number", "status", "description", "created_by_id")),
        StagedArtifact.objects.count(),
        AuditEvent.objects.exclude(action="access.denied").count(),
    )


def refused(response, status: int, code: str, fragment: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error_code"] == code
    assert fragment in body["message"], body["message"]


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("registry/fraud-detector/up/../../other/x.bin", "must not contain '..'"),
        ("registry/fraud-detector/up/%2e%2e%2f%2e%2e%2fx.bin", "must not contain '..'"),
        ("registry/fraud-detector/up/%252e%252e%252fx.bin", "must not contain '..'"),
        ("registry/fraud-detector/up/..%5c..%5cx.bin", "not backslashes"),
        ("registry/fraud-detector/up/evil\\x.bin", "not backslashes"),
        ("registry/fraud-detector/up/x%00.bin", "NUL"),
        ("/etc/passwd", "must be relative"),
        ("registry/fraud-detector/up//x.bin", "empty or '.' parts"),
    ],
)
def test_traversal_in_artifact_paths_is_refused_and_nothing_is_stored(
    api, editor_model, path, fragment
):
    before = state()
    for method in ("PUT", "GET", "DELETE"):
        response = api(method, f"{ARTIFACTS}/{path}", raw=b"payload")
        refused(response, 400, "INVALID_PARAMETER_VALUE", fragment)
    listing = api("GET", f"{ARTIFACTS}?path={path}")
    refused(listing, 400, "INVALID_PARAMETER_VALUE", fragment)
    assert state() == before


def test_version_files_are_read_only_through_the_proxy(api, editor_model):
    before = state()
    response = api("PUT", f"{ARTIFACTS}/registry/fraud-detector/1/model.bin", raw=b"x")
    refused(response, 400, "INVALID_PARAMETER_VALUE", "read-only")
    response = api("DELETE", f"{ARTIFACTS}/registry/fraud-detector/1")
    refused(response, 400, "INVALID_PARAMETER_VALUE", "read-only")
    # Uploads may go anywhere else, but into a folder (the folder is what gets registered).
    response = api("PUT", f"{ARTIFACTS}/model.bin", raw=b"x")
    refused(response, 400, "INVALID_PARAMETER_VALUE", "Name the file inside a folder")
    assert state() == before


def test_an_upload_over_the_limit_is_refused_and_not_staged(api, editor_model, settings):
    settings.REGISTRY_MAX_UPLOAD_BYTES = 10
    before = state()
    response = api("PUT", f"{ARTIFACTS}/registry/fraud-detector/up/model.bin", raw=b"x" * 11)
    refused(response, 413, "INVALID_PARAMETER_VALUE", "limited to 10 bytes")
    assert state() == before


@pytest.mark.parametrize(
    ("method", "path", "body", "fragment"),
    [
        ("POST", "/registered-models/create", {"name": 5}, "'name' must be a string, got a number"),
        (
            "POST",
            "/registered-models/create",
            {"name": "x", "tags": {"team": "a"}},
            "'tags' must be a list",
        ),
        (
            "POST",
            "/registered-models/create",
            {"name": "x", "tags": [{"key": "a", "value": 1}]},
            "'tags[0].value' must be a string",
        ),
        ("POST", "/registered-models/create", ["x"], "must be a JSON object"),
        (
            "PATCH",
            "/model-versions/update",
            {"name": "fraud-detector", "version": "1", "description": []},
            "'description' must be a string",
        ),
        (
            "POST",
            "/model-versions/create",
            {"name": "fraud-detector", "source": 7},
            "'source' must be a string",
        ),
        (
            "PATCH",
            "/model-versions/update",
            {"name": "fraud-detector", "version": 1.5, "description": "x"},
            "Version must be a positive integer",
        ),
        (
            "PATCH",
            "/model-versions/update",
            {"name": "fraud-detector", "version": "abc"},
            "Version must be a positive integer",
        ),
        (
            "POST",
            "/model-versions/transition-stage",
            {
                "name": "fraud-detector",
                "version": "1",
                "stage": "Production",
                "archive_existing_versions": "yes",
            },
            "'archive_existing_versions' must be true or false",
        ),
        (
            "POST",
            "/registered-models/alias",
            {"name": "fraud-detector", "alias": "x", "version": True},
            "Version must be a positive integer",
        ),
        (
            "POST",
            "/model-versions/create",
            {"name": "fraud-detector"},
            "Missing value for required parameter 'source'",
        ),
    ],
)
def test_wrong_json_types_and_missing_fields_are_refused(
    api, editor_model, method, path, body, fragment
):
    before = state()
    refused(api(method, API + path, body), 400, "INVALID_PARAMETER_VALUE", fragment)
    assert state() == before


def test_a_body_that_is_not_json_is_refused(api, editor_model):
    before = state()
    response = api("POST", API + "/registered-models/create", raw=b"name=x")
    refused(response, 400, "INVALID_PARAMETER_VALUE", "not valid JSON")
    assert state() == before


@pytest.mark.parametrize(
    ("path", "query", "fragment"),
    [
        ("/registered-models/search", "max_results=1001", "between 1 and 1000"),
        ("/registered-models/search", "max_results=0", "between 1 and 1000"),
        ("/registered-models/search", "max_results=ten", "must be an integer"),
        ("/model-versions/search", "max_results=200001", "between 1 and 200000"),
        ("/registered-models/search", "page_token=bm9wZQ%3D%3D", "Invalid page token"),
        ("/registered-models/search", "filter=name%3D'a'%20OR%20name%3D'b'", "OR is not supported"),
        ("/model-versions/search", "order_by=size%20DESC", "Invalid order_by"),
        ("/registered-models/search", f"filter=name%20LIKE%20'{'%25' * 21}'", "at most 20 wild"),
        ("/model-versions/search", f"filter=run_id%20ILIKE%20'{'_' * 21}'", "at most 20 wild"),
        ("/model-versions/search", f"filter=tags.x%20LIKE%20'{'%25_' * 11}'", "at most 20 wild"),
        ("/model-versions/get", "name=fraud-detector&version=-1", "positive integer"),
        (
            "/registered-models/get-latest-versions",
            "name=fraud-detector&stages=Prod",
            "Invalid stage",
        ),
    ],
)
def test_bad_search_arguments_are_invalid_parameter_values(
    api, editor_model, path, query, fragment
):
    refused(api("GET", f"{API}{path}?{query}"), 400, "INVALID_PARAMETER_VALUE", fragment)


def test_a_backtracking_like_pattern_answers_with_a_read_only_token(
    editor_model, editor, monkeypatch
):
    """``%%%%%%%%%%%%!`` as a regular expression backtracks for hours per row; as SQL LIKE it
    is answered at once. Python's re evaluating it for a row (SQLite's REGEXP) fails the test."""

    def refuse(pattern, string):
        raise AssertionError(f"a LIKE filter ran as a regular expression: {pattern!r}")

    monkeypatch.setattr(sqlite_functions, "re_search", refuse)
    factories.version(editor_model, editor, source_run="r" * 60, tags={"note": "n" * 60})
    read_only = token_create(actor=editor, user=editor, name="ro", scope="read")[1]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {read_only}")
    pattern = "%" * 12 + "!"
    searches = {
        "/registered-models/search": ["name LIKE", "name ILIKE"],
        "/model-versions/search": [
            "name LIKE",
            "run_id ILIKE",
            "source_path LIKE",
            "tags.note LIKE",
        ],
    }
    for path, clauses in searches.items():
        for clause in clauses:
            response = client.get(API + path, {"filter": f"{clause} '{pattern}'"})
            assert response.status_code == 200, response.content
            body = response.json()
            assert not body.get("registered_models") and not body.get("model_versions"), body
    found = client.get(API + "/model-versions/search", {"filter": "run_id LIKE '%r%'"})
    assert [v["run_id"] for v in found.json()["model_versions"]] == ["r" * 60]


def test_unknown_fields_are_ignored_like_stock_mlflow(api, editor_model):
    response = api(
        "POST", API + "/registered-models/create", {"name": "churn", "colour": "blue", "n": [1]}
    )
    assert response.status_code == 200
    assert response.json()["registered_model"]["name"] == "churn"
    assert "colour" not in json.dumps(response.json())


def test_protected_fields_in_an_update_are_ignored_never_applied(api, editor_model, editor, owner):
    before = ModelVersion.objects.values("status", "created_by_id").get()
    response = api(
        "PATCH",
        API + "/model-versions/update",
        {
            "name": "fraud-detector", "version": "1", "description": "retrained",
            "status": "approved", "user_id": "root", "current_stage": "Production",
            "creation_timestamp": 1, "aliases": ["production"], "source": "s3://evil",
        },
    )  # fmt: skip
    assert response.status_code == 200
    body = response.json()["model_version"]
    assert body["description"] == "retrained"
    assert body["current_stage"] == "None"
    assert body["user_id"] == "editor"
    assert {"key": "registry.status", "value": "draft"} in body["tags"]
    assert ModelVersion.objects.values("status", "created_by_id").get() == before

    factories.grant(editor, editor_model, "manage")
    response = api(
        "PATCH",
        API + "/registered-models/update",
        {"name": "fraud-detector", "description": "d", "user_id": "editor", "new_name": "x"},
    )
    assert response.status_code == 200
    model = RegisteredModel.objects.get()
    assert (model.name, model.description, model.owner) == ("fraud-detector", "d", owner)


def test_reserved_tags_and_aliases_are_refused_on_every_route(api, editor_model):
    before = state()
    for path, body in (
        ("/model-versions/create", {"name": "fraud-detector", "source": "s3://b/m",
                                    "tags": [{"key": "registry.status", "value": "approved"}]}),
        ("/model-versions/set-tag", {"name": "fraud-detector", "version": "1",
                                     "key": "Registry.Status", "value": "approved"}),
    ):  # fmt: skip
        refused(
            api("POST", API + path, body), 400, "INVALID_PARAMETER_VALUE", "kept by the registry"
        )
    response = api(
        "DELETE", API + "/model-versions/delete-tag",
        {"name": "fraud-detector", "version": "1", "key": "registry.source"},
    )  # fmt: skip
    refused(response, 400, "INVALID_PARAMETER_VALUE", "kept by the registry")
    response = api(
        "POST", API + "/model-versions/set-tag",
        {"name": "fraud-detector", "version": "1", "key": "bad/../key", "value": "x"},
    )  # fmt: skip
    refused(response, 400, "INVALID_PARAMETER_VALUE", "Invalid tag key")
    response = api(
        "POST", API + "/model-versions/set-tag",
        {"name": "fraud-detector", "version": "1", "key": "big", "value": "x" * 5001},
    )  # fmt: skip
    refused(response, 400, "INVALID_PARAMETER_VALUE", "at most 5000 characters")
    assert state() == before


def test_renaming_onto_an_existing_name_is_resource_already_exists(
    api, editor_model, editor, owner
):
    factories.grant(editor, editor_model, "manage")
    factories.registered_model(owner, "Churn")
    before = state()
    response = api(
        "POST", API + "/registered-models/rename", {"name": "fraud-detector", "new_name": "churn"}
    )
    refused(response, 400, "RESOURCE_ALREADY_EXISTS", "taken")
    assert state() == before


def test_an_unknown_method_is_405_with_a_json_error(api, editor_model):
    response = api("DELETE", API + "/registered-models/get")
    refused(response, 405, "ENDPOINT_NOT_FOUND", "use GET")
    assert response["Allow"] == "GET"


# ---------------------------------------------------------------------------------------------
# Who is calling


def test_anonymous_requests_get_401_with_a_basic_challenge(editor_model):
    before = state()
    response = Client().post(
        API + "/registered-models/create", {"name": "x"}, content_type="application/json"
    )
    refused(response, 401, "UNAUTHENTICATED", "MLFLOW_TRACKING_TOKEN")
    assert response["WWW-Authenticate"].startswith("Basic ")
    assert Client().get(f"{ARTIFACTS}/registry/fraud-detector/1/model.bin").status_code == 401
    assert state() == before


def test_basic_credentials_sign_in_per_request_and_bad_ones_get_401(editor_model, editor):
    import base64

    def basic(username, password):
        raw = base64.b64encode(f"{username}:{password}".encode()).decode()
        return Client(HTTP_AUTHORIZATION=f"Basic {raw}")

    ok = basic("editor", factories.PASSWORD).get(API + "/registered-models/get?name=fraud-detector")
    assert ok.status_code == 200
    assert "sessionid" not in ok.cookies  # no session is created
    refused(
        basic("editor", "wrong").get(API + "/registered-models/get?name=fraud-detector"),
        401, "UNAUTHENTICATED", "Invalid username or password",
    )  # fmt: skip
    garbage = Client(HTTP_AUTHORIZATION="Basic !!!").get(API + "/registered-models/search")
    refused(garbage, 401, "UNAUTHENTICATED", "Malformed")
    assert garbage["WWW-Authenticate"].startswith("Basic ")

    read_only = token_create(actor=editor, user=editor, name="ro", scope="read")[1]
    before = state()
    response = basic("editor", read_only).post(
        API + "/registered-models/create", {"name": "x"}, content_type="application/json"
    )
    refused(response, 403, "PERMISSION_DENIED", "read-only")
    assert basic("editor", read_only).get(API + "/registered-models/search").status_code == 200
    assert state() == before


def test_repeated_bad_passwords_lock_basic_sign_in_with_a_401_the_client_does_not_retry(
    editor_model, settings
):
    import base64

    settings.AXES_FAILURE_LIMIT = 2
    wrong = base64.b64encode(b"editor:wrong").decode()
    right = base64.b64encode(f"editor:{factories.PASSWORD}".encode()).decode()
    for _ in range(2):
        Client(HTTP_AUTHORIZATION=f"Basic {wrong}").get(API + "/registered-models/search")
    locked = Client(HTTP_AUTHORIZATION=f"Basic {right}").get(API + "/registered-models/search")
    refused(locked, 401, "UNAUTHENTICATED", "Too many failed sign-ins")
    assert "registered_models" not in locked.json()


def test_session_callers_that_change_state_must_pass_csrf(editor_model, editor):
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    assert client.get(API + "/registered-models/get?name=fraud-detector").status_code == 200
    before = state()
    response = client.post(
        API + "/registered-models/create", {"name": "x"}, content_type="application/json"
    )
    refused(response, 403, "PERMISSION_DENIED", "CSRF check failed")
    assert state() == before
    token = client.get("/accounts/profile/").cookies["csrftoken"].value
    response = client.post(
        API + "/registered-models/create",
        {"name": "x"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 200


def test_bad_bearer_token_gets_an_mlflow_shaped_401(client):
    response = client.get(
        "/api/2.0/mlflow/registered-models/search", HTTP_AUTHORIZATION="Bearer mrt_nope_nope"
    )
    assert response.status_code == 401
    assert response.json() == {
        "error_code": "UNAUTHENTICATED",
        "message": "Invalid or expired token.",
    }


# ---------------------------------------------------------------------------------------------
# External sources: only from the locations an administrator lists


@pytest.mark.parametrize(
    ("allowed", "source"),
    [
        ([], "s3://bucket/model"),
        (["s3://models/"], "s3://someone-elses-bucket/model"),
        (["s3://models/"], "s3://models-evil/model"),  # a prefix of the name is not the bucket
        (["s3://models/team-a/"], "s3://models/team-b/model"),
        (["s3://models/"], "gs://models/model"),
    ],
)
def test_an_external_source_outside_the_allowed_locations_is_refused(
    api, editor_model, settings, allowed, source
):
    settings.REGISTRY_EXTERNAL_SOURCES = allowed
    before = state()
    response = api(
        "POST", f"{API}/model-versions/create", {"name": "fraud-detector", "source": source}
    )
    refused(response, 400, "INVALID_PARAMETER_VALUE", "REGISTRY_EXTERNAL_SOURCES")
    assert state() == before


@pytest.mark.parametrize("source", ["s3://models/team-a/churn/1", "S3://models/team-a/churn/1"])
def test_an_external_source_in_an_allowed_location_is_registered(
    api, editor_model, settings, source
):
    settings.REGISTRY_EXTERNAL_SOURCES = ["s3://models/team-a/"]
    response = api(
        "POST", f"{API}/model-versions/create", {"name": "fraud-detector", "source": source}
    )
    assert response.status_code == 200, response.content
    assert response.json()["model_version"]["source"] == source


FORM_BODIES = [
    ("text/plain", '{"name": "planted"}'),
    ("text/plain; charset=utf-8", '{"name": "planted"}'),
    ("application/x-www-form-urlencoded", "name=planted"),
    ("multipart/form-data; boundary=x", '--x\r\nContent-Disposition: form-data; name="name"'
     '\r\n\r\nplanted\r\n--x--\r\n'),
]  # fmt: skip


@pytest.mark.parametrize("auth", ["bearer", "basic"])
@pytest.mark.parametrize(("content_type", "body"), FORM_BODIES)
def test_writes_that_a_cross_site_form_could_send_are_refused(
    editor_model, editor, auth, content_type, body
):
    """What an HTML form can post without a preflight (text/plain, form-encoded, multipart)
    never changes anything, whichever credentials the browser adds: 400 like stock MLflow."""
    if auth == "bearer":
        secret = token_create(actor=editor, user=editor, name="form", scope="write")[1]
        client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    else:
        raw = base64.b64encode(f"editor:{factories.PASSWORD}".encode()).decode()
        client = Client(HTTP_AUTHORIZATION=f"Basic {raw}")
    before = state()
    writes = [
        ("POST", "/registered-models/create", body),
        ("PATCH", "/registered-models/update",
         body.replace("planted", "fraud-detector").replace('"}', '", "description": "x"}')),
        ("POST", "/model-versions/create", body.replace("planted", "fraud-detector")),
        ("DELETE", "/model-versions/delete",
         '{"name": "fraud-detector", "version": "1"}'),
        ("DELETE", "/registered-models/delete", '{"name": "fraud-detector"}'),
    ]  # fmt: skip
    for method, path, data in writes:
        response = client.generic(method, API + path, data, content_type=content_type)
        refused(response, 400, "INVALID_PARAMETER_VALUE", "Content-Type: application/json")
    assert state() == before


def test_json_with_a_charset_is_a_json_write(editor_model, owner):
    secret = token_create(actor=owner, user=owner, name="charset", scope="write")[1]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.generic(
        "PATCH", API + "/registered-models/update",
        json.dumps({"name": "fraud-detector", "description": "with a charset"}),
        content_type="application/json; charset=utf-8",
    )  # fmt: skip
    assert response.status_code == 200, response.content
    assert RegisteredModel.objects.get().description == "with a charset"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/registered-models/create"),
        ("PATCH", "/registered-models/update"),
        ("POST", "/model-versions/create"),
        ("DELETE", "/registered-models/delete"),
        ("POST", "/registered-models/get-latest-versions"),
    ],
)
def test_deeply_nested_json_is_invalid_parameter_value(api, editor_model, method, path):
    """100,000 ``[`` made the JSON parser recurse into a 500, which the client retries."""
    before = state()
    for body in ("[" * 100_000, '{"name": ' + "[" * 3000 + "]" * 3000 + "}"):
        response = api(method, API + path, raw=body.encode())
        refused(response, 400, "INVALID_PARAMETER_VALUE", "nested too deeply")
    assert state() == before
