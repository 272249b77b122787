"""The harness of the EXPLAIN tests: a PostgreSQL database holding enough rows for the planner
to choose as it would in a large registry, and helpers to read its plans.

``scale_data`` loads ``SIZES`` once for the tests of this folder (with seed_scale's loader,
committed, then ANALYZE) and empties the database again when they are done, as pytest-django's
``transactional_db`` does; ``scale`` gives a test that data together with database access.

    from tests.scale.plans import assert_no_seq_scan, explain

    def test_models_list_uses_an_index(scale):
        plan = explain(RegisteredModel.objects.order_by("name_key")[:50])
        assert_no_seq_scan(plan, ModelVersion)

Everything here is PostgreSQL's planner: on SQLite these tests are skipped (the PostgreSQL run
of CI executes them).
"""

import pytest
from django.core.management import call_command
from django.db import connection

from registry_site.demo import scale as loader

HERE = __file__.rsplit("/", 1)[0]
# Enough rows that a sequential scan of the versions table costs more than an index walk (and
# the planner knows it), small enough to load in about 20 s: 20,000 versions.
SIZES = loader.Sizes(models=300, versions=50, big_model=5_000)
SKIP_REASON = "EXPLAIN tests read PostgreSQL's plans: run with DATABASE_URL=postgres://…"


def pytest_collection_modifyitems(config, items):
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if str(item.path).startswith(HERE):
            item.add_marker(skip)


@pytest.fixture(scope="package")
def scale_data(django_db_setup, django_db_blocker) -> loader.Result:
    """SIZES loaded and analysed, committed for the tests of this folder; the database is
    emptied afterwards (flush, as after a transactional test)."""
    if connection.vendor != "postgresql":
        pytest.skip(SKIP_REASON)
    with django_db_blocker.unblock():
        try:
            result = loader.seed(SIZES)
        except loader.AlreadySeeded:  # left by an interrupted run of a reused test database
            call_command("flush", interactive=False, verbosity=0)
            result = loader.seed(SIZES)
        try:
            yield result
        finally:
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def scale(scale_data, db) -> loader.Result:
    """The loaded registry (``.big_model``: its name; ``.holdout_dataset_id``: a dataset linked
    to versions of many models), inside the test's own transaction."""
    return scale_data
