"""Browser tests: Debian's Chromium driven by Playwright (its own browser download does not work
here). Run as their own pytest process with DJANGO_ALLOW_ASYNC_UNSAFE=true (`make test-browser`).

Without Chromium the tests are skipped with the reason; with REQUIRE_BROWSER=1 (CI) a missing
browser is a failure instead.
"""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = (
    os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
)
OUTPUT_DIR = Path(__file__).resolve().parents[2] / "test-results" / "browser"


def pytest_collection_modifyitems(config, items):
    if CHROMIUM:
        return
    if os.environ.get("REQUIRE_BROWSER") == "1":
        raise pytest.UsageError("REQUIRE_BROWSER=1 but no chromium binary found on PATH")
    skip = pytest.mark.skip(reason="Chromium not found (apt-get install chromium)")
    for item in items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


@pytest.fixture
def shots(request):
    """shots("name") saves a full-page screenshot under test-results/browser/<test>/."""
    folder = OUTPUT_DIR / request.node.name
    folder.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def sign_in(live_server):
    """sign_in(page, username, password): through the real login page."""

    def do(page, username: str, password: str):
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()

    return do
