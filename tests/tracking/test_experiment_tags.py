"""Experiment tags on the wire (set-experiment-tag, delete-experiment-tag): who may change
them, MLflow's limits, and that a refused call writes nothing (no tag, no audit event)."""

import pytest

from audit.models import AuditEvent
from models_app.access import Role
from tests import factories
from tracking import services
from tracking.models import Experiment, ExperimentTag

pytestmark = pytest.mark.django_db
SET, DELETE = "experiments/set-experiment-tag", "experiments/delete-experiment-tag"


@pytest.fixture
def experiment(scientist):
    return services.experiment_create(actor=scientist, name="churn")


def tags(experiment) -> dict:
    return dict(ExperimentTag.objects.filter(experiment=experiment).values_list("key", "value"))


def test_set_overwrite_and_delete_a_tag(caller, scientist, experiment):
    me = caller(scientist)
    exp_id = str(experiment.pk)
    assert me.post(SET, {"experiment_id": exp_id, "key": "team", "value": "fraud"}).json() == {}
    assert me.post(SET, {"experiment_id": exp_id, "key": "team", "value": "risk"}).json() == {}
    got = me.get("experiments/get", experiment_id=exp_id).json()["experiment"]
    assert got["tags"] == [{"key": "team", "value": "risk"}]
    assert me.post(DELETE, {"experiment_id": exp_id, "key": "team"}).json() == {}
    assert tags(experiment) == {}
    events = list(
        AuditEvent.objects.filter(target_type="experiment", target_id=exp_id)
        .order_by("seq")
        .values_list("action", "before", "after")
    )
    assert events[1:] == [
        ("experiment.tag_set", None, {"tag": "team", "created": True}),
        ("experiment.tag_set", None, {"tag": "team", "created": False}),
        ("experiment.tag_deleted", {"tag": "team"}, None),
    ]


def test_an_experiment_tag_value_may_be_longer_than_a_run_tag(caller, scientist, experiment):
    me = caller(scientist)
    note = "x" * 20000
    body = {"experiment_id": str(experiment.pk), "key": "mlflow.note.content", "value": note}
    assert me.post(SET, body).status_code == 200
    assert tags(experiment) == {"mlflow.note.content": note}


@pytest.mark.parametrize(
    "body, message",
    [
        ({"key": "k" * 251, "value": "v"}, "over 250 characters"),
        ({"key": "bad\nkey", "value": "v"}, "Invalid tag name"),
        ({"key": "", "value": "v"}, "Missing value for required parameter 'key'"),
        ({"key": "k", "value": "v" * 20001}, "MLflow's limit is 20000"),
        ({"key": "k", "value": 5}, "'value' must be a string"),
    ],
)
def test_bad_tags_are_refused_and_write_nothing(caller, scientist, experiment, body, message):
    me = caller(scientist)  # signing in is an audit event of its own
    before = AuditEvent.objects.count()
    answer = me.post(SET, {"experiment_id": str(experiment.pk), **body})
    assert answer.status_code == 400
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in answer.json()["message"]
    assert tags(experiment) == {}
    assert AuditEvent.objects.count() == before


def test_deleting_a_tag_the_experiment_lacks_is_resource_does_not_exist(
    caller, scientist, experiment
):
    me = caller(scientist)
    before = AuditEvent.objects.count()
    answer = me.post(DELETE, {"experiment_id": str(experiment.pk), "key": "nope"})
    assert answer.status_code == 404
    assert answer.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("route", [SET, DELETE])
def test_a_hidden_experiment_answers_like_a_missing_one(
    caller, scientist, colleague, experiment, route
):
    services.experiment_set_tag(actor=scientist, experiment=experiment, key="team", value="a")
    other = caller(colleague)
    body = {"key": "team", "value": "b"}
    hidden = other.post(route, {"experiment_id": str(experiment.pk), **body})
    missing = other.post(route, {"experiment_id": "999999", **body})
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error_code"] == missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert tags(experiment) == {"team": "a"}


@pytest.mark.parametrize("route", [SET, DELETE])
def test_a_viewer_cannot_change_tags_but_an_editor_can(
    caller, scientist, colleague, experiment, route
):
    services.experiment_set_tag(actor=scientist, experiment=experiment, key="team", value="a")
    services.experiment_sharing_set(
        actor=scientist, experiment=experiment, principal=colleague, roles={Role.VIEW}
    )
    other = caller(colleague)
    body = {"experiment_id": str(experiment.pk), "key": "team", "value": "b"}
    refused = other.post(route, body)
    assert refused.status_code == 403
    assert refused.json()["error_code"] == "PERMISSION_DENIED"
    assert tags(experiment) == {"team": "a"}
    services.experiment_sharing_set(
        actor=scientist, experiment=experiment, principal=colleague, roles={Role.EDIT}
    )
    assert other.post(route, body).status_code == 200
    assert tags(experiment) == ({"team": "b"} if route == SET else {})


def test_a_deleted_experiment_takes_no_tags(caller, scientist, experiment):
    services.experiment_delete(actor=scientist, experiment=experiment)
    answer = caller(scientist).post(
        SET, {"experiment_id": str(experiment.pk), "key": "team", "value": "a"}
    )
    assert answer.status_code == 400
    assert "restore it first" in answer.json()["message"]
    assert tags(experiment) == {}


def test_only_superusers_tag_the_default_experiment(caller, scientist):
    body = {"experiment_id": "0", "key": "owner", "value": "me"}
    refused = caller(scientist).post(SET, body)
    assert refused.status_code == 403
    assert not ExperimentTag.objects.filter(experiment_id=0).exists()
    admin = factories.user("admin", is_superuser=True)
    assert caller(admin).post(SET, body).status_code == 200
    assert tags(Experiment.objects.get(pk=0)) == {"owner": "me"}
