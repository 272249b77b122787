"""The fault suite (issue 15 part B): each fault injected FAULT_RUNS times at varied moments,
the invariant checker run after each.

FAULT_RUNS: repetitions of each fault (3 by default, as CI runs it; ``make faults`` runs 20).
In-process faults live here (tests/faults/test_*.py); faults that kill real processes, with
their own PostgreSQL cluster and gunicorn, under tests/faults/live/.

At the end of a run the terminal summary lists each fault with its runs and the violations
the checker found (the figures in README's reliability section)."""

import io
import os
from collections import defaultdict
from datetime import timedelta

import pytest
from django.core.management import call_command

from registry_site import invariants

FAULT_RUNS = int(os.environ.get("FAULT_RUNS", "3"))
RUNS = range(FAULT_RUNS)

_tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # fault -> [runs, violations]


def check(fault: str, *, sweep: bool = False, grace: timedelta = timedelta(0)) -> None:
    """After one injected fault: optionally sweep (as the nightly job would), then run every
    invariant check; no violation may be found. With ``grace`` 0 (the default) a stored file
    without a row is a violation at once, not an hour later."""
    if sweep:
        call_command("sweep_orphans", "--min-age-minutes", "0", stdout=io.StringIO())
    found = invariants.check_all(grace=grace)
    _tally[fault][0] += 1
    _tally[fault][1] += len(found)
    assert found == [], f"{fault}: " + "; ".join(map(str, found))


def pytest_terminal_summary(terminalreporter):
    if not _tally:
        return
    terminalreporter.section("faults injected (checker run after each)")
    for fault in sorted(_tally, key=lambda f: (len(f.split()[0]), f)):
        runs, violations = _tally[fault]
        terminalreporter.write_line(f"{fault}: {runs} runs, {violations} violations")


@pytest.fixture
def fault_storage(settings, tmp_path):
    """Artifacts and upload spools in this test's own folders (on separate file systems when
    a test mounts one), so 'nothing left behind' is checkable."""
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "spool").mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "tests.faults.failing.FailingStorage",
            "OPTIONS": {"location": tmp_path / "artifacts"},
        },
    }
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    from tests.faults.failing import FailingStorage

    FailingStorage.reset()
    yield tmp_path
    FailingStorage.reset()
