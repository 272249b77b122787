"""Tracking events (experiments, runs, logged models) on the audit page and its CSV: shown to
whoever may view the experiment (a run or logged model of the Default experiment: to its
creator), to superusers, and to no one else; the page's query count stays constant as they
grow."""

import csv
import io
import re

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from audit.views import KEYS, PAGE_SIZE
from core import keyset
from models_app.access import Role
from models_app.storage import incoming_from_bytes
from tests import factories
from tracking import services
from tracking.models import Experiment

pytestmark = pytest.mark.django_db
AUDIT = reverse("approvals:audit")
CSV = reverse("approvals:audit_csv")
ROW_SEQ = re.compile(r'<tr><td class="num">(\d+)</td>')
TRACKING_TARGETS = ("experiment", "run", "loggedmodel")


def _train(actor, experiment, *, name: str = "model"):
    run = services.run_create(actor=actor, experiment=experiment)
    services.run_log_batch(
        actor=actor,
        run=run,
        metrics=[services.MetricIn(key="auc", value=0.9, timestamp=1)],
        params=[("alpha", "0.5")],
    )
    services.tracked_file_put(
        actor=actor, owner=run, path="notes.txt", incoming=incoming_from_bytes("n", b"notes")
    )
    model = services.logged_model_create(
        actor=actor, experiment=experiment, name=name, source_run=run
    )
    services.logged_model_finalize(actor=actor, model=model, status="LOGGED_MODEL_READY")
    return run, model


@pytest.fixture
def tracked(owner, viewer, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    experiment = services.experiment_create(actor=owner, name="churn")
    services.experiment_set_tag(actor=owner, experiment=experiment, key="team", value="fraud")
    services.experiment_sharing_set(
        actor=owner, experiment=experiment, principal=viewer, roles={Role.VIEW}
    )
    run, model = _train(owner, experiment)
    return experiment, run, model


def _seqs(client, url=AUDIT) -> set[int]:
    response = client.get(url)
    assert response.status_code == 200
    return {int(s) for s in ROW_SEQ.findall(response.content.decode())}


def _tracking_events(**filters) -> set[int]:
    return set(
        AuditEvent.objects.filter(target_type__in=TRACKING_TARGETS, **filters).values_list(
            "seq", flat=True
        )
    )


def test_a_grantee_of_the_experiment_sees_its_events(client_for, owner, viewer, tracked):
    experiment, run, model = tracked
    events = _tracking_events()
    actions = set(AuditEvent.objects.filter(seq__in=events).values_list("action", flat=True))
    assert {
        "experiment.created", "experiment.tag_set", "experiment.sharing_changed",
        "run.created", "run.data_logged", "run.file_logged",
        "logged_model.created", "logged_model.finalized",
    } <= actions  # fmt: skip
    assert _seqs(client_for(viewer)) == events
    rows = list(csv.DictReader(io.StringIO(b"".join(client_for(viewer).get(CSV)).decode())))
    assert {int(r["seq"]) for r in rows} == events
    assert {r["target_id"] for r in rows} == {str(experiment.pk), run.pk, model.pk}


def test_an_outsider_sees_none_of_them_and_a_superuser_all(
    client_for, outsider, superuser, tracked
):
    assert _seqs(client_for(outsider)) == set()
    rows = list(csv.DictReader(io.StringIO(b"".join(client_for(outsider).get(CSV)).decode())))
    assert rows == []
    assert _tracking_events() <= _seqs(client_for(superuser))


def test_a_removed_grant_hides_the_events_again(client_for, owner, viewer, tracked):
    experiment, _, _ = tracked
    services.experiment_sharing_set(
        actor=owner, experiment=experiment, principal=viewer, roles=set()
    )
    assert _seqs(client_for(viewer)) == set()


def test_a_team_grant_shows_them_too(client_for, owner, outsider, tracked):
    experiment, _, _ = tracked
    team = factories.team("fraud-team", outsider)
    services.experiment_sharing_set(
        actor=owner, experiment=experiment, principal=team, roles={Role.VIEW}
    )
    assert _seqs(client_for(outsider)) == _tracking_events()


def test_runs_of_the_default_experiment_show_only_to_their_creator(
    client_for, owner, viewer, tracked
):
    default = Experiment.objects.get(pk=0)
    run, model = _train(owner, default, name="in-default")
    mine = _tracking_events(target_id__in=[run.pk, model.pk])
    assert mine and mine <= _seqs(client_for(owner))
    assert not mine & _seqs(client_for(viewer))  # viewer sees experiment 0, not owner's runs


def test_audit_page_query_count_is_constant_as_tracking_events_grow(
    client_for, owner, viewer, tracked, assert_constant_queries
):
    experiment, _, _ = tracked
    client = client_for(viewer)

    def get():
        assert client.get(AUDIT).status_code == 200

    def grow():
        for i in range(PAGE_SIZE // 4 + 1):
            _train(owner, experiment, name=f"m{i}")

    assert assert_constant_queries(get, grow) <= 7
    first = _seqs(client)
    assert len(first) == PAGE_SIZE and first <= _tracking_events()
    # and deeper, through the Older cursor
    cursor = keyset.encode(AuditEvent(seq=min(first)), KEYS)
    older = _seqs(client, f"{AUDIT}?after={cursor}")
    assert older and max(older) < min(first) and older <= _tracking_events()
