"""The search grammar: what the MLflow client sends parses, the rest is refused with a message,
and the translated filters select the right rows on either database."""

import pytest
from django.db import connection
from django.db.backends.sqlite3 import _functions as sqlite_functions
from django.test.utils import CaptureQueriesContext

from models_app.models import ModelVersion, RegisteredModel
from registry_site.mlflow_compat import filters
from registry_site.mlflow_compat.filters import Clause, FilterError, parse
from registry_site.mlflow_compat.serializers import with_source
from tests import factories


def test_the_prompt_clause_the_client_always_appends_parses():
    assert parse("tag.`mlflow.prompt.is_prompt` != 'true'") == [
        Clause("tag", "mlflow.prompt.is_prompt", "!=", "true")
    ]


def test_clauses_joined_by_and_with_every_key_form():
    assert parse(
        "name LIKE 'fraud%' and tags.team = \"risk\" AND tags.`my key` ILIKE '%x%' "
        "AND tag.\"quoted key\" != 'a' AND version_number >= 3 AND run_id IN ('a', \"b\") "
        "AND name NOT IN ('c')"
    ) == [
        Clause("attribute", "name", "LIKE", "fraud%"),
        Clause("tag", "team", "=", "risk"),
        Clause("tag", "my key", "ILIKE", "%x%"),
        Clause("tag", "quoted key", "!=", "a"),
        Clause("attribute", "version_number", ">=", 3),
        Clause("attribute", "run_id", "IN", ("a", "b")),
        Clause("attribute", "name", "NOT IN", ("c",)),
    ]


def test_the_clients_own_examples_without_spaces_parse():
    assert parse("name='fraud-detector'") == [Clause("attribute", "name", "=", "fraud-detector")]


def test_an_empty_filter_means_everything():
    assert parse("") == parse(None) == parse("   ") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = 'a' OR name = 'b'", "OR is not supported"),
        ("name = a", "values are quoted strings or numbers"),
        ("name 'a'", "expected a comparison"),
        ("name =", "ends in the middle"),
        ("name = 'a' name = 'b'", "expected AND"),
        ("name IN 'a'", "needs a list in parentheses"),
        ("name = 'unterminated", "cannot read"),
        ("tags. = 'x'", "expected a key"),
    ],
)
def test_malformed_filters_say_what_is_wrong(text, message):
    with pytest.raises(FilterError, match=message):
        parse(text)


def test_unknown_attributes_and_operators_are_refused_per_search():
    with pytest.raises(FilterError, match="Invalid attribute key 'creation_timestamp'"):
        filters.model_q(parse("creation_timestamp > 5"))
    with pytest.raises(FilterError, match="Invalid comparator '>'"):
        filters.model_q(parse("name > 'a'"))
    with pytest.raises(FilterError, match="Invalid attribute key 'foo'"):
        filters.version_q(parse("foo = 'x'"))
    with pytest.raises(FilterError, match="compares with an integer"):
        filters.version_q(parse("version_number = 'abc'"))


def test_order_by_adds_tiebreakers_and_refuses_unknown_keys():
    fields = filters.MODEL_ORDER
    assert filters.order_by([], fields, default=["name_key"], tail=["name_key", "pk"]) == [
        "name_key",
        "pk",
    ]
    assert filters.order_by(
        ["last_updated_timestamp DESC"], fields, default=["name_key"], tail=["name_key", "pk"]
    ) == ["-updated_at", "name_key", "pk"]
    with pytest.raises(FilterError, match="Invalid order_by"):
        filters.order_by(["creation_timestamp"], fields, default=[], tail=[])
    with pytest.raises(FilterError, match="Invalid order_by"):
        filters.order_by(["name SIDEWAYS"], fields, default=[], tail=[])


def test_page_tokens_round_trip_and_foreign_ones_are_refused():
    assert filters.decode_token(filters.encode_token(300)) == 300
    assert filters.encode_token(1) == "eyJvZmZzZXQiOiAxfQ=="  # what stock MLflow sends
    for bad in ("not-base64!", "e30=", "eyJvZmZzZXQiOiAtMX0="):  # garbage, {}, offset -1
        with pytest.raises(FilterError, match="Invalid page token"):
            filters.decode_token(bad)


def test_like_is_case_sensitive_with_wildcards_and_ilike_is_not(db):
    owner = factories.user("owner")
    for name in ("Fraud_A", "fraud-b", "fraudx", "other.v1", "otherxv1"):
        factories.registered_model(owner, name)

    def names(text):
        return sorted(
            RegisteredModel.objects.filter(filters.model_q(parse(text))).values_list(
                "name", flat=True
            )
        )

    assert names("name LIKE 'fraud%'") == ["fraud-b", "fraudx"]
    assert names("name ILIKE 'fraud%'") == ["Fraud_A", "fraud-b", "fraudx"]
    assert names("name LIKE 'fraud_b'") == ["fraud-b"]  # _ is one character
    assert names("name LIKE 'other.v1'") == ["other.v1"]  # regex characters are literal
    assert names("name = 'FRAUD-B'") == ["fraud-b"]  # = compares names as they clash
    assert names("name != 'fraud b'") == ["Fraud_A", "fraudx", "other.v1", "otherxv1"]


def test_tag_filters_match_only_models_with_the_tag_except_the_prompt_clause(db):
    owner = factories.user("owner")
    factories.registered_model(owner, "tagged", tags={"team": "risk"})
    factories.registered_model(owner, "untagged")
    factories.registered_model(owner, "prompt", tags={"mlflow.prompt.is_prompt": "true"})

    def names(text):
        return sorted(
            RegisteredModel.objects.filter(filters.model_q(parse(text))).values_list(
                "name", flat=True
            )
        )

    assert names("tags.team != 'growth'") == ["tagged"]
    assert names("tags.team LIKE 'ri%'") == ["tagged"]
    assert names("tag.`mlflow.prompt.is_prompt` != 'true'") == ["tagged", "untagged"]


def test_like_matches_every_other_character_literally_on_either_database(db):
    owner = factories.user("owner")
    values = ("x*y", "xay", "x?y", "x[1]", "x1", "x\\y", "X*Y", "50%", "50x")
    for i, value in enumerate(values):
        factories.registered_model(owner, f"m{i}", tags={"v": value})

    def matching(text):
        models = RegisteredModel.objects.filter(filters.model_q(parse(text)))
        return sorted(models.values_list("tags__value", flat=True))

    assert matching("tags.v LIKE 'x*y'") == ["x*y"]
    assert matching("tags.v LIKE 'x?y'") == ["x?y"]
    assert matching("tags.v LIKE 'x[1]'") == ["x[1]"]
    assert matching("tags.v LIKE 'x\\y'") == ["x\\y"]  # no escape character
    assert matching("tags.v LIKE 'x_y'") == ["x*y", "x?y", "x\\y", "xay"]
    assert matching("tags.v ILIKE 'x*%'") == ["X*Y", "x*y"]
    assert matching("tags.v LIKE '50%'") == ["50%", "50x"]


PATHOLOGICAL = "%%%%%%%%%%%%!"  # as a regex: hours of backtracking per row that has no "!"


@pytest.fixture
def no_regex(monkeypatch):
    """Any regular expression evaluated for a row fails the query: SQLite evaluates REGEXP with
    Python's re through this function; PostgreSQL's regex operators are checked in the SQL."""

    def refuse(pattern, string):
        raise AssertionError(f"a LIKE filter ran as a regular expression: {pattern!r}")

    monkeypatch.setattr(sqlite_functions, "re_search", refuse)


def test_like_and_ilike_run_as_sql_pattern_matching_on_every_field(db, no_regex):
    owner = factories.user("owner")
    model = factories.registered_model(owner, "a" * 60, tags={"team": "b" * 60})
    factories.version(model, owner, source_run="c" * 60, tags={"note": "d" * 60})
    model_fields = ("name", "tags.team")
    version_fields = ("name", "run_id", "source_path", "tags.note", "tags.`registry.status`")
    for op in ("LIKE", "ILIKE"):
        for field in model_fields:
            with CaptureQueriesContext(connection) as ctx:
                q = filters.model_q(parse(f"{field} {op} '{PATHOLOGICAL}'"))
                assert not RegisteredModel.objects.filter(q).exists()
            assert_sql_pattern_matching(ctx.captured_queries[-1]["sql"], op)
        for field in version_fields:
            with CaptureQueriesContext(connection) as ctx:
                q = filters.version_q(parse(f"{field} {op} '{PATHOLOGICAL}'"))
                assert not with_source(ModelVersion.objects.all()).filter(q).exists()
            assert_sql_pattern_matching(ctx.captured_queries[-1]["sql"], op)


def assert_sql_pattern_matching(sql: str, op: str) -> None:
    assert "REGEXP" not in sql.upper() and " ~" not in sql, sql
    if connection.vendor == "sqlite":  # LIKE ignores ASCII case there, GLOB does not
        expected = " GLOB " if op == "LIKE" else " LIKE "
    else:
        expected = f" {op} "
    assert expected in sql, sql
    assert "ESCAPE" in sql or expected == " GLOB ", sql


@pytest.mark.parametrize("op", ["LIKE", "ILIKE"])
@pytest.mark.parametrize("field", ["name", "tags.team"])
def test_a_pattern_with_too_many_wildcards_is_refused_with_the_limit(op, field):
    q = filters.model_q(parse(f"{field} {op} '{'%_' * 10}'"))  # 20 wildcards are fine
    assert q is not None
    with pytest.raises(FilterError, match="at most 20 wildcards"):
        filters.model_q(parse(f"{field} {op} '{'%_' * 10}%'"))
    with pytest.raises(FilterError, match="at most 20 wildcards"):
        filters.version_q(parse(f"{field} {op} '{'_' * 21}'"))
