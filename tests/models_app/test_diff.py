"""Pure comparison helpers shared by compare and review pages."""

import pytest

from models_app import diff
from models_app.models import default_higher_is_better
from tests import factories


def test_metric_deltas_are_against_the_first_column_and_coloured_by_direction():
    rows = diff.metric_table(
        [
            {("accuracy", ""): 0.8, ("loss", "test"): 0.5},
            {("accuracy", ""): 0.9, ("loss", "test"): 0.4},
            {("accuracy", ""): 0.7},
        ],
        default_higher_is_better,
    )
    accuracy, loss = rows
    assert accuracy.label == "accuracy" and loss.label == "loss (test)"
    assert accuracy.cells[0] == diff.MetricCell(0.8)
    assert accuracy.cells[1].delta == pytest.approx(0.1)
    assert accuracy.cells[1].css == "delta-better"
    assert accuracy.cells[2].css == "delta-worse"
    assert loss.higher_is_better is False
    assert loss.cells[1].css == "delta-better"  # loss went down
    assert loss.cells[2] == diff.MetricCell(None)  # missing: no delta


def test_metric_missing_in_first_column_has_no_delta():
    (row,) = diff.metric_table([{}, {("f1", ""): 0.5}], default_higher_is_better)
    assert row.cells == [diff.MetricCell(None), diff.MetricCell(0.5)]


def test_unchanged_metric_is_neither_better_nor_worse():
    assert diff.delta_class(0.0, True) == ""
    assert diff.delta_class(None, True) == ""
    assert diff.delta_class(-1, False) == diff.BETTER


def test_dict_diff_reports_added_removed_changed_and_same():
    rows = diff.dict_diff({"a": "1", "b": "2", "c": "3"}, {"b": "2", "c": "4", "d": "5"})
    assert [(r.key, r.status) for r in rows] == [
        ("a", "removed"),
        ("b", "same"),
        ("c", "changed"),
        ("d", "added"),
    ]
    assert rows[2].before == "3" and rows[2].after == "4"


def test_dict_table_compares_every_column_with_the_first():
    rows = diff.dict_table([{"a": "1", "b": "2"}, {"a": "1", "b": "3"}, {"a": "1", "c": "9"}])
    by_key = {r.key: r for r in rows}
    assert [c.status for c in by_key["a"].cells] == ["", "same", "same"]
    assert not by_key["a"].differs
    assert [c.status for c in by_key["b"].cells] == ["", "changed", "removed"]
    assert [c.status for c in by_key["c"].cells] == ["", "", "added"]
    assert by_key["c"].differs
    assert diff.dict_table([]) == []


def test_flatten_json_gives_paths_to_leaves():
    flat = diff.flatten_json({"inputs": [{"name": "x", "shape": [1, 3]}], "outputs": {}})
    assert flat == {
        "inputs[0].name": '"x"',
        "inputs[0].shape[0]": "1",
        "inputs[0].shape[1]": "3",
        "outputs": "{}",
    }
    assert diff.flatten_json(None) == {}


@pytest.mark.django_db
def test_compare_sections_diff_real_versions(owner):
    model = factories.registered_model(owner, "m")
    a = factories.version(model, owner, params={"lr": 0.1}, requirements="numpy==1.26")
    b = factories.version(
        model, owner, params={"lr": 0.2}, requirements="numpy==1.26\nscipy", tags={"k": "v"}
    )
    sections = dict(diff.compare_sections([a, b]))
    assert [c.status for c in sections["Parameters"][0].cells] == ["", "changed"]
    deps = {r.key: r.cells[1].status for r in sections["Dependencies"]}
    assert deps == {"numpy": "same", "scipy": "added"}
    assert sections["Tags"][0].cells[1].status == "added"
    assert sections["Signature"] == []
