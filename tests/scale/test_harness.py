"""The harness itself: the loaded data is what the EXPLAIN tests rely on, and the plan helpers
tell a sequential scan from an index scan."""

import pytest
from _pytest.outcomes import Failed

from approvals.models import Alias
from audit.chain import verify_chain
from models_app.models import Dataset, ModelVersion, RegisteredModel, VersionDataset
from tests.scale.conftest import SIZES
from tests.scale.plans import assert_no_seq_scan, explain, seq_scans


def test_the_data_is_loaded_with_statistics(scale):
    assert ModelVersion.objects.count() == SIZES.total_versions
    big = RegisteredModel.objects.get(name=scale.big_model)
    assert big.versions.count() == SIZES.big_model
    links = VersionDataset.objects.filter(dataset__name="scale-big-train").count()
    assert links == SIZES.big_model  # a dataset linked to thousands of versions
    assert Dataset.objects.filter(pk=scale.holdout_dataset_id).exists()
    assert Alias.objects.filter(name="production").exists()
    assert verify_chain().ok
    # ANALYZE ran: the planner's estimate of the table's size is the real one, within 10 %.
    plan = explain("SELECT * FROM models_app_modelversion")
    estimated = int(plan.split("rows=")[1].split()[0])
    assert abs(estimated - SIZES.total_versions) < SIZES.total_versions / 10, plan


def test_a_scan_of_every_version_is_caught(scale):
    plan = explain(ModelVersion.objects.filter(description__contains="week 7"))
    assert "models_app_modelversion" in seq_scans(plan)
    with pytest.raises(Failed, match="sequential scan of models_app_modelversion"):
        assert_no_seq_scan(plan, ModelVersion)


def test_an_index_lookup_passes(scale):
    big = RegisteredModel.objects.get(name=scale.big_model)
    plan = explain(ModelVersion.objects.filter(model=big, number=4000))
    assert_no_seq_scan(plan, ModelVersion)
    assert_no_seq_scan(plan, "models_app_modelversion")
    assert "version_unique_number" in plan


def test_explain_takes_sql_with_parameters_and_can_analyze(scale):
    plan = explain("SELECT id FROM models_app_modelversion WHERE id = %s", [1], analyze=True)
    assert "actual" in plan
    assert_no_seq_scan(plan, ModelVersion)
