"""A data scientist registers a version through the form, sees it in the grid and the chart,
compares it with the previous version, and downloads a file whose sha256 matches."""

import hashlib

import pytest
from playwright.sync_api import expect

from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_register_compare_and_download(page, live_server, sign_in, shots, tmp_path):
    dana = factories.user("dana")
    model = factories.registered_model(dana, "churn-predictor")
    factories.version(model, dana, metrics=[{"name": "auc", "value": 0.81, "split": "test"}])
    weights = tmp_path / "model.onnx"
    weights.write_bytes(b"onnx-weights-" * 1000)
    card = tmp_path / "README.md"
    card.write_text("# Churn predictor v2\n")

    sign_in(page, "dana", factories.PASSWORD)
    page.goto(f"{live_server.url}{model.get_absolute_url()}")
    page.get_by_role("link", name="Register a new version").click()
    page.set_input_files("#id_files", [str(weights), str(card)])
    page.fill("#id_description", "Retrained with the March data.")
    page.fill("[name=metrics-0-name]", "auc")
    page.fill("[name=metrics-0-value]", "0.86")
    page.fill("[name=metrics-0-split]", "test")
    shots(page, "1-register-form")
    page.get_by_role("button", name="Register version").click()
    expect(page.locator("h1")).to_contain_text("churn-predictor v2")
    expect(page.get_by_role("link", name="model.onnx")).to_be_visible()  # the file, to download
    expect(page.get_by_text("files: + model.onnx (sha256")).to_be_visible()  # its timeline line
    shots(page, "2-version-page")

    page.goto(f"{live_server.url}{model.get_absolute_url()}")
    expect(page.locator("svg.chart")).to_have_count(1)
    grid = page.locator("table", has=page.locator("input[name=v]"))
    expect(grid.locator("tbody tr")).to_have_count(2)
    expect(grid).to_contain_text("0.86")
    shots(page, "3-model-page")

    page.check("input[aria-label='Compare v1']")
    page.check("input[aria-label='Compare v2']")
    page.get_by_role("button", name="Compare selected").click()
    expect(page.locator("h1")).to_have_text("Compare versions")
    expect(page.locator(".delta-better, .delta-worse").first).to_be_visible()
    shots(page, "4-compare")

    page.goto(f"{live_server.url}{model.get_absolute_url()}versions/2/")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="model.onnx").first.click()
    downloaded = download_info.value.path()
    with open(downloaded, "rb") as f:
        got = hashlib.sha256(f.read()).hexdigest()
    assert got == hashlib.sha256(weights.read_bytes()).hexdigest()
    expect(page.get_by_text(got).first).to_be_visible()  # the page shows the same checksum
