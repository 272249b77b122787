"""The Server-Timing header (REGISTRY_SERVER_TIMING=1): total time, database time and the
number of queries of the request, as bench/pages.py reads them; absent by default."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests import factories

ROOT = Path(__file__).resolve().parents[2]
HEADER = re.compile(r'^total;dur=([\d.]+), db;dur=([\d.]+), queries;desc="(\d+)"$')
MIDDLEWARE = "registry_site.timing.ServerTimingMiddleware"


@pytest.fixture
def timed(settings):
    settings.MIDDLEWARE = [MIDDLEWARE, *settings.MIDDLEWARE]


@pytest.mark.django_db
def test_a_page_tells_its_time_and_queries(timed, client_for, owner):
    factories.registered_model(owner, "fraud")
    client = client_for(owner)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("models_app:model_list"))
    assert response.status_code == 200
    total, db, count = HEADER.match(response["Server-Timing"]).groups()
    assert int(count) == len(queries) > 0
    assert 0 < float(db) <= float(total)


@pytest.mark.django_db
def test_an_error_page_is_timed_too(timed, client_for, owner):
    response = client_for(owner).get(reverse("models_app:model_detail", args=["nothing"]))
    assert response.status_code == 404
    total, db, count = HEADER.match(response["Server-Timing"]).groups()
    assert int(count) >= 1 and float(total) >= float(db)


@pytest.mark.django_db
def test_off_by_default(client_for, owner):
    response = client_for(owner).get(reverse("models_app:model_list"))
    assert "Server-Timing" not in response


@pytest.mark.parametrize(("value", "on"), [("1", True), ("", False), ("0", False)])
def test_the_environment_variable_switches_it_on(tmp_path, value, on):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(REGISTRY_DEV="1", REGISTRY_DATA_DIR=str(tmp_path), REGISTRY_SERVER_TIMING=value)
    script = (
        "import django; from django.conf import settings; django.setup(); "
        f"print({MIDDLEWARE!r} in settings.MIDDLEWARE, settings.MIDDLEWARE.index({MIDDLEWARE!r}) "
        f"if {MIDDLEWARE!r} in settings.MIDDLEWARE else -1)"
    )
    env["DJANGO_SETTINGS_MODULE"] = "registry_site.settings"
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    assert out == (["True", "0"] if on else ["False", "-1"])  # first: it times the others too
