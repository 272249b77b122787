"""Issue 14 part 5: the audit page and the version timeline show changes as readable lines;
the CSV keeps the exact JSON."""

import csv
import io
import json
import re

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse

from audit import chain, readable
from audit.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


def _record(owner, target, model, action, before=None, after=None):
    with transaction.atomic():
        return chain.record(
            actor=owner, action=action, target=target, model=model, before=before, after=after
        )


def test_audit_page_shows_status_files_metrics_and_alias_as_readable_lines(
    client_for, owner, superuser
):
    model = factories.registered_model(owner, "m1")
    version = factories.version(model, owner)
    _record(owner, version, model, "version.approved",
            {"status": "in_review"}, {"status": "approved", "approvals": 2})  # fmt: skip
    _record(owner, version, model, "artifact.added", None,
            {"files": [{"path": "model.pkl", "sha256": "3f2a9c1d" + "0" * 56}]})  # fmt: skip
    _record(owner, version, model, "version.updated",
            {"metrics": [{"name": "accuracy", "value": 0.9, "split": ""}], "params": {"lr": 0.1}},
            {"metrics": [{"name": "accuracy", "value": 0.95, "split": ""}],
             "params": {"lr": 0.06}})  # fmt: skip
    _record(owner, version, model, "alias.moved",
            {"alias": "production", "version": 3},
            {"alias": "production", "version": 4})  # fmt: skip
    html = client_for(superuser).get(reverse("approvals:audit")).content.decode()
    for line in (
        "status: in review → approved",
        "files: + model.pkl (sha256 3f2a9c1d…)",
        "metrics: accuracy: 0.9 → 0.95",
        "params: lr: 0.1 → 0.06",
        "production: v3 → v4",
    ):
        assert f"<li>{line}</li>" in html
    assert "{&#x27;" not in html and "{'" not in html


def test_unknown_shapes_fall_back_to_key_value_lines(client_for, owner, superuser):
    model = factories.registered_model(owner, "m1")
    _record(owner, model, model, "something.new",
            {"deep": {"a": 1}},
            {"deep": {"a": 2}, "list": [{"x": 1}], "n": 0.060000000000000005})  # fmt: skip
    # sorted: PostgreSQL's jsonb keeps keys in its own order
    assert sorted(readable.lines(AuditEvent.objects.get(action="something.new"))) == [
        "deep: a: 1 → 2",
        "list: + {x: 1}",
        "n: 0.060000000000000005",  # exactly as stored
    ]
    html = client_for(superuser).get(reverse("approvals:audit")).content.decode()
    assert "<li>deep: a: 1 → 2</li>" in html
    assert "{&#x27;" not in html


def test_long_values_are_truncated_with_the_whole_line_in_a_title(client_for, owner, superuser):
    model = factories.registered_model(owner, "m1")
    _record(owner, model, model, "model.updated", {"description": "a"}, {"description": "b" * 300})
    html = client_for(superuser).get(reverse("approvals:audit")).content.decode()
    assert f'title="description: a → {"b" * 300}"' in html
    assert f">description: a → {'b' * 300}<" not in html


def test_csv_keeps_the_exact_json(client_for, owner, superuser):
    model = factories.registered_model(owner, "m1")
    after = {"params": {"lr": 0.06}, "status": "approved"}
    _record(owner, model, model, "version.approved", {"status": "in_review"}, after)
    response = client_for(superuser).get(reverse("approvals:audit_csv"), {"action": "version."})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert json.loads(rows[0]["after"]) == after
    assert rows[0]["after"] == json.dumps(after)


def test_version_timeline_shows_readable_lines_and_redacts_private_parents(
    client_for, owner, viewer, outsider
):
    model = factories.registered_model(owner, "m1")
    factories.grant(viewer, model, "view")
    secret = factories.registered_model(outsider, "secret-model")
    secret_version = factories.version(secret, outsider)
    version = factories.version(model, owner)
    _record(owner, version, model, "version.approved",
            {"status": "in_review"}, {"status": "approved"})  # fmt: skip
    _record(owner, version, model, "version.updated", {"parents": []},
            {"parents": [{"version_id": secret_version.pk, "model": "secret-model",
                          "version": 1, "relation": "fine-tuned"}]})  # fmt: skip
    html = client_for(viewer).get(version.get_absolute_url()).content.decode()
    assert "<li>status: in review → approved</li>" in html
    assert "<li>parents: + a private version (fine-tuned)</li>" in html
    assert "secret-model" not in html
    factories.grant(owner, secret, "view")
    html = client_for(owner).get(version.get_absolute_url()).content.decode()
    assert "<li>parents: + secret-model v1 (fine-tuned)</li>" in html


def test_demo_audit_page_shows_no_raw_dicts_nor_float_artefacts(client_for, capsys):
    call_command("seed_demo")
    capsys.readouterr()
    c = client_for(User.objects.get(username="admin"))
    pages = AuditEvent.objects.count() // 50 + 1
    for number in range(1, pages + 1):
        html = c.get(reverse("approvals:audit"), {"page": number}).content.decode()
        assert "{&#x27;" not in html and "{'" not in html and "[{" not in html
        assert not re.search(r"\d\.\d*(0000000|9999999)\d", html), number


def test_audit_page_and_timeline_query_counts_stay_constant_with_readable_lines(
    client_for, owner, viewer, outsider, assert_constant_queries
):
    model = factories.registered_model(owner, "m1")
    factories.grant(viewer, model, "view")
    version = factories.version(model, owner)
    secret_version = factories.version(factories.registered_model(outsider, "secret"), outsider)
    c = client_for(viewer)

    def get():
        assert c.get(reverse("approvals:audit")).status_code == 200
        assert c.get(version.get_absolute_url()).status_code == 200

    def grow(count=30):
        for i in range(count):
            _record(owner, version, model, "version.updated",
                    {"parents": [], "params": {"lr": i}},
                    {"parents": [{"version_id": secret_version.pk, "model": "secret",
                                  "version": 1, "relation": "fine-tuned"}],
                     "params": {"lr": i + 0.5}})  # fmt: skip

    grow(1)  # redaction costs one query once any event names a parent, however many
    assert assert_constant_queries(get, grow) <= 30
    html = c.get(reverse("approvals:audit")).content.decode()
    assert "<li>parents: + a private version (fine-tuned)</li>" in html
    assert "<li>params: lr: 29 → 29.5</li>" in html
