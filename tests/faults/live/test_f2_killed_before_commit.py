"""F2: the worker dies after the file is stored and before the transaction that records it
commits (a fault point of core/faults.py: the worker sends itself SIGKILL there). What is left
is an orphan file without a row, which the sweeper removes after the grace period."""

import hashlib
import random

import pytest

from .conftest import RUNS, create_model, create_version, timed

pytestmark = pytest.mark.faults_live
# Two moments: the file is stored, no transaction open yet; the artifact row and its audit
# event are written, the transaction not committed.
POINTS = ("files-stored", "files-recorded")


@pytest.mark.parametrize("run", range(RUNS))
def test_a_worker_killed_before_the_commit_leaves_an_orphan_the_sweeper_removes(registry, run):
    rng = random.Random(f"f2-{run}")
    with timed("F2 worker killed after the file is stored, before the commit"):
        model = create_model(registry, "f2")
        number = create_version(registry, model)
        path = f"/api/v1/models/{model}/versions/{number}/files/model.onnx"
        body = rng.randbytes(rng.randint(1, 3 * 1024 * 1024))
        before = registry.stored_files()

        registry.arm(POINTS[run % 2])
        with pytest.raises(ConnectionError):
            registry.request("PUT", path, body)
        registry.wait_for_workers()

        assert registry.artifacts_of(model) == []
        orphans = registry.stored_files() - before
        assert len(orphans) == 1  # the stored file, which no row points at

        status, stored = registry.request("PUT", path, body)
        assert status == 201, stored
        assert stored["sha256"] == hashlib.sha256(body).hexdigest()
        registry.check_invariants(sweep=True)
        assert not orphans & registry.stored_files()
