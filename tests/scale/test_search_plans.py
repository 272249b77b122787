"""Search (``?q=``) on PostgreSQL reads the full-text GIN index (model_search_idx, on the
expression RegisteredModelQuerySet.search matches), instead of computing every model's
document, and still finds what it found before."""

from django.contrib.auth.models import User
from django.db import connection

from models_app import selectors
from models_app.models import ModelVersion, RegisteredModel
from registry_site.demo import scale as loader
from tests.scale.plans import assert_no_seq_scan, explain


def _admin():
    return User.objects.get(username=loader.ADMIN)


def test_search_reads_the_full_text_index(scale):
    """The index is on exactly the expression the search filters by. (At this folder's 300
    models a scan of the models table is still the cheaper plan, so scans are priced out here:
    with an expression the index does not cover, the plan would scan anyway. At 3,000 models
    the planner picks the index by itself.)"""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = explain(selectors.model_list(_admin(), q="predicts 123"))
    assert "model_search_idx" in plan, plan
    assert_no_seq_scan(plan, ModelVersion)


def test_search_by_words_finds_the_model_the_index_points_to(scale):
    # Words of the description in any order (full text), not a substring of it.
    found = selectors.model_list(_admin(), q="123 predicts")
    assert [m.name for m in found] == [f"{loader.MODEL_PREFIX}00123"]


def test_search_still_matches_part_of_a_name(scale):
    found = selectors.model_list(_admin(), q=f"{loader.MODEL_PREFIX}0012")
    expected = RegisteredModel.objects.filter(name__startswith=f"{loader.MODEL_PREFIX}0012")
    assert {m.name for m in found} == set(expected.values_list("name", flat=True))
    assert len(found) == 10
