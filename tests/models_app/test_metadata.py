import pytest
from django.core.exceptions import ValidationError

from models_app.metadata import (
    MAX_DATASETS,
    MAX_PARENTS,
    parse_metadata,
    parse_metrics_file,
    parse_requirements,
    validate_artifact_path,
)


def errors_of(data) -> dict:
    with pytest.raises(ValidationError) as e:
        parse_metadata(data)
    return e.value.message_dict


def test_full_metadata_document_is_parsed():
    meta = parse_metadata(
        {
            "description": "Gradient boosted trees",
            "framework": "xgboost",
            "framework_version": "2.1.0",
            "python_version": "3.12",
            "requirements": "xgboost==2.1.0\nnumpy>=1.26  # pinned by CI\n-r base.txt\n",
            "metrics": [
                {"name": "auc", "value": 0.91, "split": "test"},
                {"name": "loss", "value": "0.2"},
            ],
            "params": {"max_depth": 6, "eta": 0.1, "early_stop": True},
            "signature": {"inputs": [{"name": "amount", "type": "double"}]},
            "source": {
                "run": "run-42",
                "repository": "git@example.org:ml/fraud",
                "commit": "abc123",
            },
            "datasets": [{"name": "claims-2025", "role": "train", "rows": 1000}, "claims-holdout"],
            "parents": [{"model": "fraud", "version": 3, "relation": "fine_tuned"}],
            "tags": {"team": "risk"},
        }
    )
    assert [(m.name, m.value, m.split) for m in meta.metrics] == [
        ("auc", 0.91, "test"),
        ("loss", 0.2, ""),
    ]
    assert meta.params == {"max_depth": "6", "eta": "0.1", "early_stop": "true"}
    assert meta.dependencies() == [("numpy", ">=1.26"), ("xgboost", "==2.1.0")]
    assert meta.datasets[1].name == "claims-holdout"
    assert meta.parents[0].relation == "fine_tuned"
    assert meta.source_commit == "abc123"


@pytest.mark.parametrize("value", ["NaN", "nan", "inf", "-Infinity", float("nan"), float("inf")])
def test_non_finite_metric_values_are_refused(value):
    errors = errors_of({"metrics": [{"name": "auc", "value": value}]})
    assert "finite" in errors["metrics[0].value"][0]


@pytest.mark.parametrize("value", ["abc", "", None, True, [1]])
def test_non_numeric_metric_values_are_refused(value):
    errors = errors_of({"metrics": [{"name": "auc", "value": value}]})
    assert "must be a number" in errors["metrics[0].value"][0]


def test_duplicate_metric_is_refused():
    errors = errors_of({"metrics": [{"name": "auc", "value": 1}, {"name": "auc", "value": 2}]})
    assert "appears twice" in errors["metrics[1]"][0]


def test_unknown_and_wrongly_typed_fields_are_reported_together():
    errors = errors_of({"colour": "blue", "metrics": "high", "signature": [1], "datasets": {}})
    assert "unknown fields: colour" in errors["metadata"][0]
    assert set(errors) >= {"metadata", "metrics", "signature", "datasets"}


def test_bad_dataset_role_and_parent_version():
    errors = errors_of(
        {"datasets": [{"name": "d", "role": "tuning"}], "parents": [{"model": "m", "version": 0}]}
    )
    assert "datasets[0].role" in errors
    assert "parents[0].version" in errors


def test_requirements_are_parsed_and_duplicates_refused():
    assert parse_requirements("Scikit_Learn[all]>=1.5; python_version>'3.10'\n") == [
        ("scikit-learn", "[all]>=1.5; python_version>'3.10'")
    ]
    with pytest.raises(ValidationError, match="listed twice"):
        parse_requirements("numpy\nNumPy==2")


def test_metrics_csv_and_json_files():
    csv_metrics = parse_metrics_file(b"name,value,split\nauc,0.9,test\nloss,0.1,\n", "m.csv")
    assert [(m.name, m.value, m.split) for m in csv_metrics] == [
        ("auc", 0.9, "test"),
        ("loss", 0.1, ""),
    ]
    json_metrics = parse_metrics_file(b'{"auc": 0.9}', "m.json")
    assert json_metrics[0].value == 0.9


@pytest.mark.parametrize(
    "content,message",
    [
        (b'{"auc": 0.9', "not valid JSON"),
        (b'{"auc": NaN}', "not valid JSON"),
        (b"metric;score\nauc;0.9\n", "header row"),
        (b"name,value\nauc,high\n", "must be a number"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_metrics_files_that_do_not_parse_say_why(content, message):
    with pytest.raises(ValidationError) as e:
        parse_metrics_file(content, "metrics")
    assert message in " ".join(e.value.messages)


@pytest.mark.parametrize(
    "path",
    ["model.onnx", "weights/part-1.safetensors", "a b/c.txt", "ünïcode/ok.bin"],
)
def test_good_artifact_paths(path):
    assert validate_artifact_path(path) == path


@pytest.mark.parametrize(
    "path,message",
    [
        ("../secret", "'..'"),
        ("weights/../../x", "'..'"),
        ("/etc/passwd", "relative"),
        ("C:/x", "relative"),
        ("weights\\x.bin", "forward slashes"),
        ("model\x00.bin", "NUL"),
        ("x" * 300, "at most 255"),
        ("a//b", "empty"),
        ("./a", "'.'"),
        ("", "required"),
        ("a\nb", "control"),
    ],
)
def test_bad_artifact_paths_are_refused(path, message):
    with pytest.raises(ValidationError) as e:
        validate_artifact_path(path)
    assert message in e.value.messages[0]


def test_overlong_tag_values_and_package_names_are_refused():
    errors = errors_of({"tags": {"k": "x" * 5001}})
    assert "at most 5000" in errors["tags.k"][0]
    errors = errors_of({"requirements": "a" * 201 + "==1"})
    assert "at most 200 characters" in errors["requirements"][0]


def test_datasets_and_parents_are_capped_like_the_other_lists():
    many = [{"name": f"d{i}"} for i in range(MAX_DATASETS + 1)]
    assert f"at most {MAX_DATASETS} datasets" in errors_of({"datasets": many})["datasets"][0]
    parents = [{"model": "m", "version": i} for i in range(1, MAX_PARENTS + 2)]
    assert f"at most {MAX_PARENTS} parent" in errors_of({"parents": parents})["parents"][0]
    assert parse_metadata({"datasets": many[:MAX_DATASETS]}).datasets[-1].name == "d49"


def test_a_metric_may_carry_its_training_step():
    meta = parse_metadata(
        {"metrics": [{"name": "auc", "value": 0.9, "step": 3}, {"name": "f1", "value": 1}]}
    )
    assert [(m.name, m.step) for m in meta.metrics] == [("auc", 3), ("f1", None)]
    from_csv = parse_metrics_file(b"name,value,step\nauc,0.9,12\nf1,0.5,\n")
    assert [(m.name, m.step) for m in from_csv] == [("auc", 12), ("f1", None)]
    for bad in ("x", 1.5, True, 2**63):
        with pytest.raises(ValidationError) as refused:
            parse_metadata({"metrics": [{"name": "auc", "value": 0.9, "step": bad}]})
        assert "whole number" in str(refused.value)
