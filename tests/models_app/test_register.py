"""Registering versions through the web form, editing drafts, adding and removing files.

The helpers at the top are shared with the other upload/download test modules.
"""

import hashlib
import html as html_lib
import re
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit import chain
from models_app.models import Artifact, Metric, ModelVersion
from tests import factories

pytestmark = pytest.mark.django_db

SECTIONS = ("metrics", "params", "tags", "datasets", "parents")

# ---------------------------------------------------------------------------------------------
# Shared helpers


def use_local_storage(settings, tmp_path: Path) -> Path:
    """Artifacts and upload spools in this test's own folders, so 'nothing left' is checkable."""
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "spool").mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "artifacts"},
        },
    }
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    return tmp_path


def stored_keys(folder: str = "") -> list[str]:
    """Every key in the artifact storage (local or S3), walked with listdir."""
    try:
        dirs, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return []
    keys = [f"{folder}/{name}" if folder else name for name in files]
    for name in dirs:
        keys += stored_keys(f"{folder}/{name}" if folder else name)
    return sorted(keys)


def spooled_files(settings) -> list[str]:
    return sorted(p.name for p in Path(settings.FILE_UPLOAD_TEMP_DIR).iterdir())


def assert_nothing_saved(model, settings=None) -> None:
    assert not ModelVersion.objects.filter(model=model).exists()
    assert not Artifact.objects.filter(version__model=model).exists()
    assert stored_keys() == []
    if settings is not None:
        assert spooled_files(settings) == []


def version_data(*, files=None, folder=None, paths=None, **fields) -> dict:
    """POST data for the version form: rows per section, files as {name: bytes}."""
    data = {}
    for section in SECTIONS:
        rows = fields.pop(section, [])
        data[f"{section}-TOTAL_FORMS"] = str(len(rows))
        data[f"{section}-INITIAL_FORMS"] = "0"
        for i, row in enumerate(rows):
            for key, value in row.items():
                data[f"{section}-{i}-{key}"] = value
    data.update(fields)
    if files:
        data["files"] = [SimpleUploadedFile(n, c) for n, c in files.items()]
    if folder:
        data["folder"] = [SimpleUploadedFile(n, c) for n, c in folder.items()]
    if paths is not None:
        data["paths"] = "\n".join(paths)
    return data


def errors_in(response) -> str:
    """The text of every error message on the page."""
    html = response.content.decode()
    return html_lib.unescape(" | ".join(re.findall(r'<p class="error">(.*?)</p>', html, re.S)))


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    return use_local_storage(settings, tmp_path)


@pytest.fixture
def model(owner, editor, viewer):
    model = factories.registered_model(owner, "fraud")
    factories.grant(editor, model, "edit")
    factories.grant(viewer, model, "view")
    return model


def create_url(model) -> str:
    return reverse("models_app:version_create", args=[model.slug])


# ---------------------------------------------------------------------------------------------
# Registering


def test_form_shows_file_and_folder_inputs_and_loads_the_upload_script(client_for, editor, model):
    html = client_for(editor).get(create_url(model)).content.decode()
    assert 'type="file" name="files" multiple' in html
    folder = re.search(r'<input type="file" name="folder"[^>]*>', html).group(0)
    assert "webkitdirectory" in folder and "multiple" in folder
    assert re.search(r'<textarea name="paths" hidden', html)
    assert re.search(r'<script src="/static/js/upload.js" nonce="[^"]+"', html)
    assert 'enctype="multipart/form-data"' in html


def test_editor_registers_a_version_with_files_and_metadata(client_for, editor, owner, model):
    parent = factories.version(model, owner)
    data = version_data(
        description="Retrained on **May** data.",
        framework="xgboost",
        requirements="xgboost==2.1.0\nnumpy>=1.26",
        signature='{"inputs": [{"name": "amount", "type": "double"}]}',
        metrics=[
            {"name": "auc", "value": "0.91", "split": "test"},
            {"name": "loss", "value": "1e-3", "split": ""},
        ],
        params=[{"key": "max_depth", "value": "6"}],
        tags=[{"key": "team", "value": "risk"}],
        datasets=[{"name": "claims-2025", "role": "train", "uri": "s3://d/c", "digest": ""}],
        parents=[{"model": "fraud", "version": str(parent.number), "relation": "retrained"}],
        files={"model.bin": b"weights", "labels.json": b"[1, 2]"},
    )
    response = client_for(editor).post(create_url(model), data)
    version = ModelVersion.objects.get(model=model, number=2)
    assert response.status_code == 302
    assert response["Location"] == version.get_absolute_url()
    assert version.created_by == editor
    assert version.framework == "xgboost"
    assert version.signature == {"inputs": [{"name": "amount", "type": "double"}]}
    assert version.metric_map() == {("auc", "test"): 0.91, ("loss", ""): 0.001}
    assert dict(version.params.values_list("key", "value")) == {"max_depth": "6"}
    assert version.parent_links.get().parent == parent
    assert version.dataset_links.get().dataset.name == "claims-2025"
    artifacts = {a.path: a for a in version.artifacts.all()}
    assert set(artifacts) == {"model.bin", "labels.json"}
    for path, content in {"model.bin": b"weights", "labels.json": b"[1, 2]"}.items():
        a = artifacts[path]
        assert (a.size, a.sha256) == (len(content), sha(content))
        with default_storage.open(a.storage_key) as f:
            assert f.read() == content
    assert artifacts["model.bin"].storage_key.startswith(f"artifacts/{model.pk}/")


def test_folder_files_are_stored_under_the_paths_the_script_sends(
    client_for, editor, model, settings
):
    data = version_data(
        files={"README.md": b"# hi"},
        folder={"a.bin": b"A", "b.bin": b"B"},
        paths=["README.md", "weights/a.bin", "weights/sub/b.bin"],
    )
    assert client_for(editor).post(create_url(model), data).status_code == 302
    version = model.versions.get()
    assert sorted(version.artifacts.values_list("path", "sha256")) == [
        ("README.md", sha(b"# hi")),
        ("weights/a.bin", sha(b"A")),
        ("weights/sub/b.bin", sha(b"B")),
    ]
    assert spooled_files(settings) == []  # moved into storage, nothing left behind


def test_without_the_script_each_file_keeps_its_plain_name(client_for, editor, model):
    data = version_data(folder={"deep/inside/a.bin": b"A"})  # Django keeps "a.bin" only
    assert client_for(editor).post(create_url(model), data).status_code == 302
    assert list(model.versions.get().artifacts.values_list("path", flat=True)) == ["a.bin"]


def test_a_metrics_file_adds_metrics(client_for, editor, model):
    data = version_data(
        metrics=[{"name": "auc", "value": "0.9", "split": "test"}],
        metrics_file=SimpleUploadedFile("m.csv", b"name,value,split\nf1,0.8,test\n"),
    )
    assert client_for(editor).post(create_url(model), data).status_code == 302
    assert sorted(Metric.objects.values_list("name", "value")) == [("auc", 0.9), ("f1", 0.8)]


@pytest.mark.parametrize("value", ["NaN", "inf", "-Infinity", "abc"])
def test_bad_metric_value_is_shown_next_to_its_row(client_for, editor, model, settings, value):
    data = version_data(
        metrics=[
            {"name": "auc", "value": "0.9", "split": ""},
            {"name": "f1", "value": value, "split": ""},
        ],
        files={"model.bin": b"weights"},
    )
    response = client_for(editor).post(create_url(model), data)
    assert response.status_code == 400
    html = response.content.decode()
    row = re.search(r'<tr class="has-error">(.*?)</tr>', html, re.S).group(1)
    assert 'name="metrics-1-value"' in row
    assert "must be a finite number" in row or "must be a number" in row
    assert_nothing_saved(model, settings)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../escape.bin", "must not contain empty, '.' or '..' parts"),
        ("weights/../../x", "must not contain empty, '.' or '..' parts"),
        ("/etc/x", "must be relative"),
        ("C:/x", "must be relative"),
        ("weights\\a.bin", "Use forward slashes"),
        ("a\x00b", "must not contain NUL"),
        ("x" * 300, "at most 255 characters"),
    ],
)
def test_bad_file_path_is_refused_and_nothing_is_stored(
    client_for, editor, model, settings, path, message
):
    data = version_data(files={"a.bin": b"A", "b.bin": b"B"}, paths=["ok.bin", path])
    response = client_for(editor).post(create_url(model), data)
    assert response.status_code == 400
    assert message in errors_in(response)
    assert_nothing_saved(model, settings)


def test_two_files_with_the_same_path_are_refused(client_for, editor, model, settings):
    data = version_data(files={"a.bin": b"A", "b.bin": b"B"}, paths=["w/x.bin", "w/x.bin"])
    response = client_for(editor).post(create_url(model), data)
    assert response.status_code == 400
    assert "Two files have the same path: w/x.bin" in errors_in(response)
    assert_nothing_saved(model, settings)


def test_paths_that_do_not_match_the_files_are_refused(client_for, editor, model, settings):
    data = version_data(files={"a.bin": b"A"}, paths=["a.bin", "b.bin"])
    response = client_for(editor).post(create_url(model), data)
    assert response.status_code == 400
    assert "does not match the files received" in errors_in(response)
    assert_nothing_saved(model, settings)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("m.csv", b"metric;score\nauc;0.9\n", "needs a header row"),
        ("m.csv", b"name,value\nauc,NaN\n", "finite"),
        ("m.json", b'{"auc": 0.9,', "not valid JSON"),
        ("m.json", b'{"auc": NaN}', "not valid JSON"),
        ("m.json", b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_metrics_file_that_does_not_parse_is_refused(
    client_for, editor, model, settings, name, content, message
):
    data = version_data(
        metrics_file=SimpleUploadedFile(name, content), files={"model.bin": b"weights"}
    )
    response = client_for(editor).post(create_url(model), data)
    assert response.status_code == 400
    assert message in errors_in(response)
    assert_nothing_saved(model, settings)


@pytest.mark.parametrize(
    ("signature", "message"), [("{nope", "Not valid JSON"), ("[1, 2]", "must be a JSON object")]
)
def test_bad_signature_is_refused(client_for, editor, model, signature, message):
    response = client_for(editor).post(create_url(model), version_data(signature=signature))
    assert response.status_code == 400
    assert message in errors_in(response)
    assert_nothing_saved(model)


def test_unknown_parent_is_shown_on_its_row(client_for, editor, model):
    data = version_data(parents=[{"model": "nope", "version": "1", "relation": "retrained"}])
    response = client_for(editor).post(create_url(model), data)
    assert response.status_code == 400
    assert "No version 1 of 'nope' found." in errors_in(response)
    assert_nothing_saved(model)


def test_failed_store_of_the_second_file_leaves_nothing(
    client_for, editor, model, settings, monkeypatch
):
    from models_app import storage

    real_store = storage.store
    calls = []

    def flaky_store(key, incoming):
        calls.append(key)
        if len(calls) == 2:
            raise OSError("disk full")
        real_store(key, incoming)

    monkeypatch.setattr(storage, "store", flaky_store)
    data = version_data(files={"a.bin": b"A", "b.bin": b"B", "c.bin": b"C"})
    with pytest.raises(OSError, match="disk full"):
        client_for(editor).post(create_url(model), data)
    assert len(calls) == 2
    assert_nothing_saved(model, settings)


def test_database_error_after_storing_removes_the_stored_files(
    client_for, editor, model, settings, monkeypatch
):

    def broken_record(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(chain, "record", broken_record)
    data = version_data(files={"a.bin": b"A", "b.bin": b"B"})
    with pytest.raises(RuntimeError, match="database went away"):
        client_for(editor).post(create_url(model), data)
    assert_nothing_saved(model, settings)


# ---------------------------------------------------------------------------------------------
# Editing drafts


def freeze(version) -> None:
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.IN_REVIEW)


def edit_data(version, **fields) -> dict:
    """The edit form as the browser would post it back unchanged, with ``fields`` changed."""
    from models_app.forms import version_initial

    initial = version_initial(version, version.created_by)
    rows = {s: initial[s] for s in SECTIONS}
    scalars = {k: v or "" for k, v in initial["form"].items()}
    return version_data(**{**scalars, **rows, **fields})


def test_edit_form_is_prefilled_and_saves_new_metadata(client_for, editor, owner, model):
    version = factories.version(model, owner, metrics={"auc": 0.9}, framework="sklearn")
    url = reverse("models_app:version_edit", args=[model.slug, version.number])
    page = client_for(editor).get(url).content.decode()
    assert 'value="sklearn"' in page and 'value="0.9"' in page
    data = edit_data(version, metrics=[{"name": "auc", "value": "0.95", "split": ""}])
    response = client_for(editor).post(url, data)
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.metric_map() == {("auc", ""): 0.95}
    assert version.framework == "sklearn"


def test_editing_a_draft_keeps_each_metrics_step_and_shows_it(client_for, editor, owner, model):
    metrics = [{"name": "auc", "value": 0.93, "step": 7}, {"name": "f1", "value": 1}]
    version = factories.version(model, owner, metrics=metrics)
    url = reverse("models_app:version_edit", args=[model.slug, version.number])
    assert client_for(editor).post(url, edit_data(version, description="New")).status_code == 302
    assert sorted(version.metrics.values_list("name", "step")) == [("auc", 7), ("f1", None)]
    page = client_for(editor).get(version.get_absolute_url()).content.decode()
    assert "at step 7" in page and page.count("at step") == 1
    bad = edit_data(version, metrics=[{"name": "auc", "value": "0.9", "step": "x"}])
    assert client_for(editor).post(url, bad).status_code == 400
    assert sorted(version.metrics.values_list("name", "step")) == [("auc", 7), ("f1", None)]


def test_edit_refuses_a_bad_value_and_changes_nothing(client_for, editor, owner, model):
    version = factories.version(model, owner, metrics={"auc": 0.9})
    url = reverse("models_app:version_edit", args=[model.slug, version.number])
    data = edit_data(version, metrics=[{"name": "auc", "value": "NaN", "split": ""}])
    response = client_for(editor).post(url, data)
    assert response.status_code == 400
    assert "finite" in errors_in(response)
    assert version.metric_map() == {("auc", ""): 0.9}


def test_frozen_version_refuses_edit_add_and_delete_with_409(
    client_for, editor, owner, model, settings, django_capture_on_commit_callbacks
):
    version = factories.version(model, owner, metrics={"auc": 0.9}, files={"m.bin": b"M"})
    freeze(version)
    keys = stored_keys()
    c = client_for(editor)
    args = [model.slug, version.number]
    edit = reverse("models_app:version_edit", args=args)
    add = reverse("models_app:artifact_add", args=args)
    with django_capture_on_commit_callbacks(execute=True):
        responses = [
            c.get(edit),
            c.post(edit, edit_data(version, description="changed")),
            c.get(add),
            c.post(add, {"files": [SimpleUploadedFile("x.bin", b"X")]}),
            c.post(reverse("models_app:artifact_delete", args=[*args, "m.bin"])),
            c.post(reverse("models_app:version_delete", args=args)),
        ]
    for response in responses:
        assert response.status_code == 409
        assert "frozen" in response.content.decode()
    version.refresh_from_db()
    assert version.description == "" and version.metric_map() == {("auc", ""): 0.9}
    assert list(version.artifacts.values_list("path", flat=True)) == ["m.bin"]
    assert stored_keys() == keys
    assert spooled_files(settings) == []


# ---------------------------------------------------------------------------------------------
# Files of a draft, deleting a draft


def test_files_can_be_added_to_a_draft(client_for, editor, owner, model):
    version = factories.version(model, owner, files={"m.bin": b"M"})
    url = reverse("models_app:artifact_add", args=[model.slug, version.number])
    assert client_for(editor).get(url).status_code == 200
    data = {"files": [SimpleUploadedFile("extra.bin", b"E")], "paths": "conf/extra.bin"}
    assert client_for(editor).post(url, data).status_code == 302
    assert sorted(version.artifacts.values_list("path", flat=True)) == ["conf/extra.bin", "m.bin"]
    assert len(stored_keys()) == 2


def test_adding_a_file_at_an_existing_path_is_refused(client_for, editor, owner, model):
    version = factories.version(model, owner, files={"m.bin": b"M"})
    url = reverse("models_app:artifact_add", args=[model.slug, version.number])
    response = client_for(editor).post(url, {"files": [SimpleUploadedFile("m.bin", b"new")]})
    assert response.status_code == 400
    assert "already has a file at m.bin" in errors_in(response)
    assert len(stored_keys()) == 1


def test_adding_nothing_is_refused(client_for, editor, owner, model):
    version = factories.version(model, owner)
    url = reverse("models_app:artifact_add", args=[model.slug, version.number])
    response = client_for(editor).post(url, {})
    assert response.status_code == 400
    assert "Choose at least one file" in errors_in(response)


def test_a_file_is_removed_from_a_draft(
    client_for, editor, owner, model, django_capture_on_commit_callbacks
):
    version = factories.version(model, owner, files={"a/m.bin": b"M", "n.bin": b"N"})
    url = reverse("models_app:artifact_delete", args=[model.slug, version.number, "a/m.bin"])
    with django_capture_on_commit_callbacks(execute=True):
        assert client_for(editor).post(url).status_code == 302
    assert list(version.artifacts.values_list("path", flat=True)) == ["n.bin"]
    assert len(stored_keys()) == 1


def test_removing_a_missing_file_is_404(client_for, editor, owner, model):
    version = factories.version(model, owner)
    url = reverse("models_app:artifact_delete", args=[model.slug, version.number, "nope"])
    assert client_for(editor).post(url).status_code == 404


def test_a_draft_is_deleted_with_its_files(
    client_for, editor, owner, model, django_capture_on_commit_callbacks
):
    version = factories.version(model, owner, files={"m.bin": b"M"})
    url = reverse("models_app:version_delete", args=[model.slug, version.number])
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(editor).post(url)
    assert response.status_code == 302
    assert response["Location"] == model.get_absolute_url()
    assert_nothing_saved(model)


# ---------------------------------------------------------------------------------------------
# Access: every route of this module, upload/download and model management, for each persona.

# (url name, extra args after slug, method, role needed); "number" means the draft's number.
ROUTES = [
    ("version_create", [], "get", "edit"),
    ("version_create", [], "post", "edit"),
    ("version_edit", ["number"], "get", "edit"),
    ("version_edit", ["number"], "post", "edit"),
    ("version_delete", ["number"], "post", "edit"),
    ("artifact_add", ["number"], "get", "edit"),
    ("artifact_add", ["number"], "post", "edit"),
    ("artifact_delete", ["number", "m.bin"], "post", "edit"),
    ("artifact_download", ["number", "m.bin"], "get", "view"),
    ("version_zip", ["number"], "get", "view"),
    ("model_edit", [], "get", "manage"),
    ("model_edit", [], "post", "manage"),
    ("model_delete", [], "post", "manage"),
]
POST_ONLY = ["version_delete", "artifact_delete", "model_delete"]


def route_url(name, extra, slug, number) -> str:
    args = [slug, *[number if a == "number" else a for a in extra]]
    return reverse(f"models_app:{name}", args=args)


def without_tokens(html: bytes) -> str:
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html.decode())
    return re.sub(r'nonce="[^"]*"', "", html)


@pytest.fixture
def draft(owner, model):
    return factories.version(model, owner, files={"m.bin": b"M"})


@pytest.mark.parametrize(("name", "extra", "method", "role"), ROUTES)
def test_anonymous_is_sent_to_login(anonymous, draft, name, extra, method, role):
    url = route_url(name, extra, draft.model.slug, draft.number)
    response = getattr(anonymous, method)(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(("name", "extra", "method", "role"), ROUTES)
def test_outsider_gets_the_same_404_as_for_a_missing_model(
    client_for, outsider, draft, name, extra, method, role
):
    c = client_for(outsider)
    hidden = getattr(c, method)(route_url(name, extra, draft.model.slug, draft.number))
    missing = getattr(c, method)(route_url(name, extra, "no-such-model", draft.number))
    assert hidden.status_code == missing.status_code == 404
    assert without_tokens(hidden.content) == without_tokens(missing.content)


@pytest.mark.parametrize(("name", "extra", "method", "role"), ROUTES)
def test_viewer_may_only_download(
    client_for,
    viewer,
    draft,
    settings,
    name,
    extra,
    method,
    role,
    django_capture_on_commit_callbacks,
):
    url = route_url(name, extra, draft.model.slug, draft.number)
    with django_capture_on_commit_callbacks(execute=True):
        response = getattr(client_for(viewer), method)(url)
    assert response.status_code == (200 if role == "view" else 403)
    assert ModelVersion.objects.filter(model=draft.model).count() == 1
    assert list(draft.artifacts.values_list("path", flat=True)) == ["m.bin"]
    assert len(stored_keys()) == 1


@pytest.mark.parametrize("name", POST_ONLY)
def test_get_on_an_action_is_405(client_for, owner, draft, name):
    extra = {"version_delete": ["number"], "artifact_delete": ["number", "m.bin"]}.get(name, [])
    url = route_url(name, extra, draft.model.slug, draft.number)
    assert client_for(owner).get(url).status_code == 405
    assert ModelVersion.objects.filter(pk=draft.pk).exists()


def test_editor_reaches_every_edit_page(client_for, editor, draft):
    for name in ("version_create", "version_edit", "artifact_add"):
        extra = [] if name == "version_create" else ["number"]
        url = route_url(name, extra, draft.model.slug, draft.number)
        assert client_for(editor).get(url).status_code == 200
