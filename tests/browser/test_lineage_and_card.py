"""A reader follows a fine-tuned model's lineage graph to its parent and data; its author writes
the model card and downloads it as Markdown."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from registry_site.demo.files import onnx_classifier
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_lineage_graph_and_card_export(browser, live_server, sign_in, shots):
    dana = factories.user("dana")
    factories.user("victor")  # a reader: every signed-in user may view internal models
    encoder = factories.registered_model(dana, "support-ticket-encoder", visibility="internal")
    factories.version(
        encoder, dana, datasets=[{"name": "tickets-2025", "role": "train", "rows": 1_250_000}]
    )
    router = factories.registered_model(dana, "ticket-router", visibility="internal")
    version = factories.version(
        router, dana, description="Routes tickets to 12 queues.",
        metrics=[{"name": "accuracy", "value": 0.884, "split": "test"}],
        datasets=[{"name": "tickets-labelled-2026", "role": "train"},
                  {"name": "tickets-holdout-2026", "role": "test"}],
        parents=[{"model": "support-ticket-encoder", "version": 1, "relation": "fine_tuned"}],
        files={"model.onnx": onnx_classifier()},
    )  # fmt: skip
    sha = version.artifacts.get().sha256

    reader = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(reader, "victor", factories.PASSWORD)
    reader.goto(f"{live_server.url}{version.get_absolute_url()}")
    expect(reader.get_by_text("features float32[batch, 64]")).to_be_visible()
    reader.get_by_role("link", name="Lineage", exact=True).click()
    graph = reader.locator("svg.lineage-graph")
    expect(graph).to_be_visible()
    for text in ("ticket-router v1", "support-ticket-encoder v1", "tickets-2025",
                 "tickets-labelled-2026", "tickets-holdout-2026", "fine-tuned"):  # fmt: skip
        expect(graph.locator(f"text:text-is('{text}')")).to_be_visible()
    shots(reader, "1-lineage")
    graph.locator("a", has_text="support-ticket-encoder v1").click()
    expect(reader.locator("h1")).to_contain_text("support-ticket-encoder v1")

    author = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(author, "dana", factories.PASSWORD)
    author.goto(f"{live_server.url}{version.get_absolute_url()}")
    author.get_by_role("link", name="Model card", exact=True).first.click()
    author.get_by_role("link", name="Edit the card").click()
    author.fill("[name=intended_use]", "Routing English and German support tickets.")
    author.fill("[name=caveats]", "Unknown queues go to *triage*.")
    author.get_by_role("button", name="Save the card").click()
    expect(author.locator("#section-caveats em")).to_have_text("triage")
    shots(author, "2-card")
    with author.expect_download() as download_info:
        author.get_by_role("link", name="Export as Markdown").click()
    download = download_info.value
    assert download.suggested_filename == "ticket-router-v1-model-card.md"
    text = Path(download.path()).read_text(encoding="utf-8")
    assert text.startswith("# Model card: ticket-router v1")
    assert "## Intended use\n\nRouting English and German support tickets." in text
    assert "- ancestor (generation 1): support-ticket-encoder v1" in text
    assert f"`{sha}`" in text
