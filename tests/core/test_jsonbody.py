"""The bounded JSON loader every request body, form field and metadata file goes through."""

import pytest

from core import jsonbody


@pytest.mark.parametrize(
    "raw",
    ["[" * 100_000, "[" * 5000 + "]" * 5000, '{"a": ' * 65 + "1" + "}" * 65, "[" * 65 + "]" * 65],
)
def test_documents_nested_too_deeply_are_refused_as_bad_json(raw):
    with pytest.raises(jsonbody.TooDeep, match="at most 64 levels"):
        jsonbody.loads(raw)
    with pytest.raises(ValueError):  # callers that answer bad JSON with a 400 do so here too
        jsonbody.loads(raw)


def test_documents_within_the_bound_parse_as_json_loads_does():
    assert jsonbody.loads("[" * 64 + "]" * 64) is not None
    assert jsonbody.loads('{"a": [1, {"b": null}], "c": "[[[["}') == {
        "a": [1, {"b": None}],
        "c": "[[[[",
    }
    assert jsonbody.loads("3") == 3
    with pytest.raises(ValueError):
        jsonbody.loads("NaN", parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
