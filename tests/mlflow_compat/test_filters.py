"""The search grammar: what the MLflow client sends parses, the rest is refused with a message,
and the translated filters select the right rows on either database."""

import pytest

from models_app.models import RegisteredModel
from registry_site.mlflow_compat import filters
from registry_site.mlflow_compat.filters import Clause, FilterError, parse
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
