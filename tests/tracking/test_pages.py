"""The dashboard's pages of experiment tracking: experiments, an experiment's runs, its sharing
page and a run's page (issue 17, "The dashboard shows the run")."""

import re

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from models_app.access import Role
from models_app.storage import incoming_from_bytes
from tests import factories
from tracking import selectors, services
from tracking.models import DEFAULT_EXPERIMENT_ID, Experiment
from tracking.services import DatasetIn, MetricIn

pytestmark = pytest.mark.django_db

COMMIT = "c0ffee" + "0" * 34


def experiment_url(experiment) -> str:
    return reverse("tracking:experiment_detail", args=[experiment.pk])


def sharing_url(experiment) -> str:
    return reverse("tracking:experiment_sharing", args=[experiment.pk])


def run_url(run) -> str:
    return reverse("tracking:run_detail", args=[run.pk])


def trained_run(actor, experiment, *, steps: int = 3, name: str = "churn-train"):
    """A finished run as a training script leaves it: source tags, two parameters, two metrics
    with a history, a training dataset, and a logged model with a file, output by the run."""
    run = services.run_create(
        actor=actor,
        experiment=experiment,
        name=name,
        tags=[
            ("mlflow.source.name", "train_churn.py"),
            ("mlflow.source.type", "LOCAL"),
            ("mlflow.source.git.commit", COMMIT),
            ("team", "fraud"),
        ],
    )
    services.run_log_batch(
        actor=actor,
        run=run,
        params=[("alpha", "0.5"), ("max_depth", "6")],
        metrics=[MetricIn("auc", 0.5 + i / 100, 1000 + i, i) for i in range(steps)]
        + [MetricIn("loss", 1.0 - i / 100, 1000 + i, i) for i in range(steps)],
    )
    services.run_log_inputs(
        actor=actor,
        run=run,
        datasets=[
            DatasetIn(
                "claims-2026", "d1g3st", "s3", '{"uri": "s3://data/claims.csv"}',
                tags=(("mlflow.data.context", "training"),),
            )
        ],
    )  # fmt: skip
    logged = services.logged_model_create(
        actor=actor, experiment=experiment, name="churn-model", source_run=run
    )
    services.tracked_file_put(
        actor=actor, owner=logged, path="MLmodel", incoming=incoming_from_bytes("MLmodel", b"x")
    )
    services.run_log_outputs(actor=actor, run=run, models=[(logged.pk, 0)])
    return services.run_update(
        actor=actor, run=run, status="FINISHED", end_time=run.start_time + 65_000
    )


@pytest.fixture
def experiment(scientist):
    return services.experiment_create(actor=scientist, name="churn", tags=[("goal", "retain")])


@pytest.fixture
def run(scientist, experiment):
    return trained_run(scientist, experiment)


def share(manager, experiment, user, role: Role = Role.VIEW) -> None:
    services.experiment_sharing_set(
        actor=manager, experiment=experiment, principal=user, roles={role}
    )


def registered_from(run, owner, *, name: str = "churn-predictor"):
    """A version of a new model of ``owner``'s whose training run is ``run``."""
    model = factories.registered_model(owner, name)
    return model, factories.version(model, owner, source_run=run.pk)


# ---------------------------------------------------------------------------------------------
# What the creator sees


def test_experiment_list_shows_the_experiments_with_their_run_counts(
    client_for, scientist, experiment, run
):
    html = client_for(scientist).get(reverse("tracking:experiment_list")).content.decode()
    link = f'<a href="{experiment_url(experiment)}">churn</a>'
    row = re.search(rf"<tr>\s*<td>{re.escape(link)}.*?</tr>", html, re.S).group(0)
    assert "scientist" in row and '<td class="num">1</td>' in row and "Active" in row
    assert "Default" in html  # experiment 0 is everyone's
    assert 'href="/experiments/"' in html  # in the main navigation


def test_deleted_experiments_are_hidden_unless_asked_for(client_for, scientist, experiment):
    services.experiment_delete(actor=scientist, experiment=experiment)
    c = client_for(scientist)
    assert ">churn<" not in c.get(reverse("tracking:experiment_list")).content.decode()
    shown = c.get(reverse("tracking:experiment_list"), {"deleted": "1"}).content.decode()
    assert ">churn<" in shown and "Deleted" in shown


def test_experiment_list_pages_by_cursor(client_for, scientist):
    for i in range(55):
        services.experiment_create(actor=scientist, name=f"exp-{i:02d}")
    c = client_for(scientist)
    first = c.get(reverse("tracking:experiment_list")).content.decode()
    assert "exp-54" in first and "exp-04" not in first
    after = re.search(r'href="\?([^"]*)" rel="next"', first).group(1).replace("&amp;", "&")
    second = c.get(f"{reverse('tracking:experiment_list')}?{after}").content.decode()
    assert "exp-04" in second and "exp-54" not in second and "Default" in second


def test_experiment_page_pages_its_runs_by_cursor(client_for, scientist, experiment):
    for i in range(55):
        services.run_create(actor=scientist, experiment=experiment, name=f"r-{i:02d}",
                            start_time=1_000 + i)  # fmt: skip
    c = client_for(scientist)
    first = c.get(experiment_url(experiment)).content.decode()
    assert ">r-54<" in first and ">r-04<" not in first  # newest first
    after = re.search(r'href="\?([^"]*)" rel="next"', first).group(1).replace("&amp;", "&")
    second = c.get(f"{experiment_url(experiment)}?{after}").content.decode()
    assert ">r-04<" in second and ">r-00<" in second and ">r-54<" not in second


def test_the_default_experiment_is_not_shared(client_for, superuser, colleague):
    default = Experiment.objects.get(pk=DEFAULT_EXPERIMENT_ID)
    response = client_for(superuser).post(
        sharing_url(default), {"kind": "user", "name": "colleague", "roles": ["view"]}
    )
    assert response.status_code == 400 and "open to everyone" in response.content.decode()


def test_experiment_page_lists_runs_tags_and_grants(client_for, scientist, colleague, run):
    experiment = run.experiment
    share(scientist, experiment, colleague)
    html = client_for(scientist).get(experiment_url(experiment)).content.decode()
    assert run_url(run) in html and "churn-train" in html
    assert "Finished" in html and "1 min 5 s" in html
    runs_table = html[html.index('id="runs"') :]
    assert '<th class="num">auc</th>' in runs_table and "0.52" in runs_table
    assert "goal=retain" in html
    grants = html[html.index('id="experiment-grants"') :]
    assert "colleague" in grants[: grants.index("</ul>")]
    assert sharing_url(experiment) in html


def test_run_page_shows_what_the_run_logged(client_for, scientist, run):
    html = client_for(scientist).get(run_url(run)).content.decode()
    info = html[html.index('id="run-info"') :]
    assert "Finished" in info and "1 min 5 s" in info
    source = html[html.index('id="run-source"') :]
    assert "train_churn.py" in source and COMMIT in source
    params = html[html.index('id="run-params"') :]
    assert "alpha" in params and "0.5" in params and "max_depth" in params
    metrics = html[html.index('id="run-metrics"') : html.index('id="run-charts"')]
    assert re.search(r"<td>auc</td><td[^>]*>0\.52</td><td class=\"num\">2</td>", metrics)
    assert re.search(r"<td>loss</td><td[^>]*>0\.98</td><td class=\"num\">2</td>", metrics)
    charts = html[html.index('id="run-charts"') : html.index('id="run-inputs"')]
    assert charts.count('<svg class="chart"') == 2  # one series per metric
    assert charts.count('class="point"') == 6  # three steps each
    inputs = html[html.index('id="run-inputs"') :]
    assert "claims-2026" in inputs and "d1g3st" in inputs and "training" in inputs
    assert "s3://data/claims.csv" in inputs
    models = html[html.index('id="run-logged-models"') :]
    assert "churn-model" in models and "MLmodel" in models and "Pending" in models
    tags = html[html.index('id="run-tags"') :]
    assert "team" in tags and "fraud" in tags
    assert experiment_url(run.experiment) in html


def test_run_page_lists_the_versions_registered_from_it(client_for, scientist, run):
    model, version = registered_from(run, scientist)
    html = client_for(scientist).get(run_url(run)).content.decode()
    listed = html[html.index("Versions registered from this run") :]
    assert version.get_absolute_url() in listed and "churn-predictor v1" in listed


def test_a_long_history_is_charted_from_a_bounded_number_of_points(
    client_for, scientist, experiment
):
    run = services.run_create(actor=scientist, experiment=experiment)
    for batch in range(10):  # 10,000 values of one metric, in batches of MLflow's limit
        steps = range(batch * 1000, (batch + 1) * 1000)
        services.run_log_batch(
            actor=scientist, run=run, metrics=[MetricIn("loss", 1 / (1 + s), s, s) for s in steps]
        )
    (series,) = selectors.metric_series(run, ["loss"])
    assert series.total == 10_000
    assert len(series.samples) <= selectors.CHART_POINTS + 1
    assert series.samples[0].step == 0 and series.samples[-1].step == 9_999
    html = client_for(scientist).get(run_url(run)).content.decode()
    assert html.count('class="point"') == len(series.samples)
    assert f"{len(series.samples)} of 10000 values drawn" in html


def _log(actor, run, key: str, steps, *, stamp=lambda s: s) -> None:
    services.run_log_batch(
        actor=actor, run=run, metrics=[MetricIn(key, s / 7, stamp(s), s) for s in steps]
    )


def test_a_long_history_is_sampled_at_evenly_spread_steps_with_its_first_and_last(
    scientist, experiment, django_assert_num_queries
):
    run = services.run_create(actor=scientist, experiment=experiment)
    # steps logged densely at first and sparsely later, the last one off the even grid
    _log(scientist, run, "loss", [*range(0, 300), *range(300, 1000, 7), 1001])
    _log(scientist, run, "auc", range(5))  # a short history alongside, drawn whole
    with django_assert_num_queries(1):
        auc, loss = selectors.metric_series(run, ["auc", "loss"], points=10)
    assert auc.total == 5 and [s.step for s in auc.samples] == [0, 1, 2, 3, 4]
    assert loss.total == 401
    steps = [s.step for s in loss.samples]
    # the first point logged at or after each of 0, 100, 200, …, 900, and the last one
    assert steps == [0, 100, 200, 300, 405, 503, 601, 706, 804, 902, 1001]
    assert [s.value for s in loss.samples] == [step / 7 for step in steps]


def test_a_long_history_logged_at_one_step_is_spread_over_its_timestamps(scientist, experiment):
    run = services.run_create(actor=scientist, experiment=experiment)
    # MLflow logs at step 0 when the script names none
    services.run_log_batch(
        actor=scientist,
        run=run,
        metrics=[MetricIn("loss", i / 7, 1_000 + i, 0) for i in range(101)],
    )
    (loss,) = selectors.metric_series(run, ["loss"], points=10)
    assert loss.total == 101
    assert [s.value for s in loss.samples] == [i / 7 for i in range(0, 101, 10)]


def test_a_history_of_points_plus_one_values_is_drawn_whole(scientist, experiment):
    run = services.run_create(actor=scientist, experiment=experiment)
    _log(scientist, run, "loss", [0, 1, 2, 3, 50, 51, 52, 53, 54, 99, 100])  # 11 values
    (loss,) = selectors.metric_series(run, ["loss"], points=10)
    assert [s.step for s in loss.samples] == [0, 1, 2, 3, 50, 51, 52, 53, 54, 99, 100]
    _log(scientist, run, "loss", [101])  # one more: sampled, 1 / 10 of the steps apart
    (loss,) = selectors.metric_series(run, ["loss"], points=10)
    assert [s.step for s in loss.samples] == [0, 50, 99, 101]


def test_nan_values_are_listed_but_not_drawn(client_for, scientist, experiment):
    run = services.run_create(actor=scientist, experiment=experiment)
    services.run_log_batch(
        actor=scientist,
        run=run,
        metrics=[MetricIn("auc", 0.5, 1, 0), MetricIn("auc", float("nan"), 2, 1)],
    )
    html = client_for(scientist).get(run_url(run)).content.decode()
    assert re.search(r"<td>auc</td><td[^>]*>NaN</td>", html)
    assert html.count('class="point"') == 1


# ---------------------------------------------------------------------------------------------
# Who sees what


def test_outsiders_get_404_on_every_page(client_for, scientist, outsider, run):
    experiment = run.experiment
    c = client_for(outsider)
    for url in (experiment_url(experiment), sharing_url(experiment), run_url(run)):
        assert c.get(url).status_code == 404, url
    remove = reverse("tracking:experiment_sharing_remove", args=[experiment.pk])
    assert c.post(remove, {"kind": "user", "name": "scientist"}).status_code == 404
    assert ">churn<" not in c.get(reverse("tracking:experiment_list")).content.decode()


def test_a_hidden_run_answers_like_a_missing_one(client_for, outsider, run):
    c = client_for(outsider)
    hidden, missing = c.get(run_url(run)), c.get("/runs/" + "f" * 32 + "/")
    assert hidden.status_code == missing.status_code == 404
    assert c.get("/experiments/999999/").status_code == 404
    assert c.get("/experiments/nope/").status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(client, run):
    for url in (reverse("tracking:experiment_list"), experiment_url(run.experiment), run_url(run)):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_version_viewer_sees_the_run_page_but_not_the_experiment(
    client_for, scientist, owner, viewer, run
):
    model, version = registered_from(run, owner)
    factories.grant(viewer, model, "view")
    c = client_for(viewer)
    page = c.get(run_url(run))
    assert page.status_code == 200
    html = page.content.decode()
    assert "alpha" in html and "claims-2026" in html
    assert experiment_url(run.experiment) not in html  # named, not linked
    assert c.get(experiment_url(run.experiment)).status_code == 404
    # The version page links the run page.
    version_html = c.get(version.get_absolute_url()).content.decode()
    assert f'<a href="{run_url(run)}">{run.pk}</a>' in version_html


def test_a_version_of_a_model_one_may_not_see_opens_nothing(client_for, owner, outsider, run):
    registered_from(run, owner)  # a private model: the outsider holds no role on it
    assert client_for(outsider).get(run_url(run)).status_code == 404


def test_an_experiment_grantee_sees_both_pages(client_for, scientist, colleague, run):
    share(scientist, run.experiment, colleague)
    c = client_for(colleague)
    assert c.get(experiment_url(run.experiment)).status_code == 200
    html = c.get(run_url(run)).content.decode()
    assert experiment_url(run.experiment) in html
    assert c.get(sharing_url(run.experiment)).status_code == 403  # a viewer, not a manager


def test_runs_of_others_in_the_default_experiment_stay_private(client_for, scientist, colleague):
    default = Experiment.objects.get(pk=DEFAULT_EXPERIMENT_ID)
    mine = services.run_create(actor=scientist, experiment=default, name="mine")
    c = client_for(colleague)
    html = c.get(experiment_url(default)).content.decode()
    assert c.get(experiment_url(default)).status_code == 200 and "mine" not in html
    assert c.get(run_url(mine)).status_code == 404
    listed = c.get(reverse("tracking:experiment_list")).content.decode()
    row = re.search(r'<tr>\s*<td><a href="/experiments/0/">Default</a>.*?</tr>', listed, re.S)
    assert '<td class="num">0</td>' in row.group(0)  # the scientist's run is not counted


def test_the_version_page_names_a_run_that_is_not_tracked_here(client_for, owner):
    model = factories.registered_model(owner, "churn-predictor")
    version = factories.version(model, owner, source_run="a" * 32)
    html = client_for(owner).get(version.get_absolute_url()).content.decode()
    assert "a" * 32 in html and "/runs/" not in html


# ---------------------------------------------------------------------------------------------
# Sharing


def test_a_manager_shares_the_experiment_and_the_grant_is_audited(
    client_for, scientist, colleague, run
):
    experiment = run.experiment
    c = client_for(colleague)
    assert c.get(experiment_url(experiment)).status_code == 404
    response = client_for(scientist).post(
        sharing_url(experiment), {"kind": "user", "name": "colleague", "roles": ["view"]}
    )
    assert response.status_code == 302 and response["Location"] == sharing_url(experiment)
    assert c.get(experiment_url(experiment)).status_code == 200
    assert c.get(run_url(run)).status_code == 200
    event = AuditEvent.objects.filter(action="experiment.sharing_changed").latest("seq")
    assert event.actor == scientist and event.after == {"principal": "colleague", "roles": ["view"]}
    html = client_for(scientist).get(sharing_url(experiment)).content.decode()
    grants = html[html.index('id="grants"') :]
    assert "colleague" in grants and '<span class="tag">view</span>' in grants


def test_a_team_is_granted_through_the_same_form(client_for, scientist, colleague, experiment):
    from django.contrib.auth.models import Group

    team = Group.objects.create(name="fraud-team")
    colleague.groups.add(team)
    response = client_for(scientist).post(
        sharing_url(experiment), {"kind": "team", "name": "fraud-team", "roles": ["edit"]}
    )
    assert response.status_code == 302
    assert client_for(colleague).get(experiment_url(experiment)).status_code == 200


def test_removing_a_grant_hides_the_experiment_again(client_for, scientist, colleague, run):
    share(scientist, run.experiment, colleague)
    remove = reverse("tracking:experiment_sharing_remove", args=[run.experiment.pk])
    response = client_for(scientist).post(remove, {"kind": "user", "name": "colleague"})
    assert response.status_code == 302
    assert client_for(colleague).get(experiment_url(run.experiment)).status_code == 404
    assert client_for(colleague).get(run_url(run)).status_code == 404


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "user", "name": "nobody", "roles": ["view"]}, "No active user named"),
        ({"kind": "team", "name": "nope", "roles": ["view"]}, "No team named"),
        ({"kind": "robot", "name": "colleague", "roles": ["view"]}, "Choose a user or a team"),
        ({"kind": "user", "name": "colleague"}, "Pick at least one role"),
        ({"kind": "user", "name": "colleague", "roles": ["owner"]}, "Unknown role"),
        ({"kind": "user", "name": "colleague", "roles": ["review"]}, "Experiments have no review"),
    ],
)
def test_bad_sharing_input_is_explained_and_changes_nothing(
    client_for, scientist, colleague, experiment, data, message
):
    response = client_for(scientist).post(sharing_url(experiment), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not AuditEvent.objects.filter(action="experiment.sharing_changed").exists()
    assert client_for(colleague).get(experiment_url(experiment)).status_code == 404


def test_an_editor_cannot_change_sharing(client_for, scientist, colleague, experiment):
    share(scientist, experiment, colleague, Role.EDIT)
    c = client_for(colleague)
    assert c.get(sharing_url(experiment)).status_code == 403
    posted = c.post(
        sharing_url(experiment), {"kind": "user", "name": "colleague", "roles": ["manage"]}
    )
    assert posted.status_code == 403
    assert Role.MANAGE not in selectors_roles(colleague, experiment)


def selectors_roles(user, experiment) -> set:
    from tracking.access import experiment_roles

    return experiment_roles(user, Experiment.objects.get(pk=experiment.pk))


# ---------------------------------------------------------------------------------------------
# Query counts: constant whatever the number of experiments, runs, params, metrics, grants


def test_experiment_list_query_count_is_constant(
    client_for, scientist, colleague, assert_constant_queries
):
    made = iter(range(1000))

    def grow():
        for _ in range(10):
            experiment = services.experiment_create(actor=colleague, name=f"e{next(made)}")
            share(colleague, experiment, scientist)
            services.run_create(actor=colleague, experiment=experiment)

    grow()
    c = client_for(scientist)

    def request():
        assert c.get(reverse("tracking:experiment_list")).status_code == 200

    count = assert_constant_queries(request, grow)
    assert count <= 4, count  # 4 when measured


def test_experiment_page_query_count_is_constant(
    client_for, scientist, colleague, experiment, assert_constant_queries
):
    trained_run(scientist, experiment)
    share(scientist, experiment, colleague)
    c = client_for(colleague)

    def request():
        assert c.get(experiment_url(experiment)).status_code == 200

    def grow():
        for i in range(10):
            trained_run(scientist, experiment, name=f"run-{i}")

    count = assert_constant_queries(request, grow)
    assert count <= 11, count  # 11 when measured


def test_run_page_query_count_is_constant(
    client_for, scientist, owner, viewer, experiment, assert_constant_queries
):
    run = trained_run(scientist, experiment, steps=1)
    model, _ = registered_from(run, owner)
    factories.grant(viewer, model, "view")
    c = client_for(viewer)  # through a version: the costliest way in

    def request():
        assert c.get(run_url(run)).status_code == 200

    def grow():
        services.run_log_batch(
            actor=scientist,
            run=run,
            params=[(f"p{i}", str(i)) for i in range(50)],
            metrics=[MetricIn(f"m{i}", i, 1, s) for i in range(30) for s in range(20)],
            tags=[(f"t{i}", "v") for i in range(20)],
        )
        services.run_log_inputs(
            actor=scientist, run=run,
            datasets=[DatasetIn(f"d{i}", f"x{i}", "s3", "{}") for i in range(5)],
        )  # fmt: skip
        for i in range(3):
            logged = services.logged_model_create(
                actor=scientist, experiment=experiment, name=f"m{i}", source_run=run
            )
            services.tracked_file_put(
                actor=scientist, owner=logged, path="MLmodel",
                incoming=incoming_from_bytes("MLmodel", b"x"),
            )  # fmt: skip
            factories.version(model, owner, source_run=run.pk)

    count = assert_constant_queries(request, grow)
    assert count <= 14, count  # 14 when measured


def test_sharing_page_query_count_is_constant(
    client_for, scientist, experiment, assert_constant_queries
):
    made = iter(range(1000))

    def grow():
        for _ in range(5):
            share(scientist, experiment, factories.user(f"u{next(made)}"))

    grow()
    c = client_for(scientist)

    def request():
        assert c.get(sharing_url(experiment)).status_code == 200

    count = assert_constant_queries(request, grow)
    assert count <= 6, count  # 6 when measured


def test_version_page_with_a_training_run_costs_one_query_more(
    client_for, scientist, owner, run, assert_constant_queries
):
    model = factories.registered_model(owner, "churn-predictor")
    plain = factories.version(model, owner)
    linked = factories.version(model, owner, source_run=run.pk)
    c = client_for(owner)

    def pinned(version):
        return assert_constant_queries(
            lambda: c.get(version.get_absolute_url()), lambda: factories.version(model, owner)
        )

    assert pinned(linked) == pinned(plain) + 1
