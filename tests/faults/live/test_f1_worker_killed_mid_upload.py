"""F1: the worker is killed (SIGKILL) while an upload streams in. No row points at a partial
file, the sweeper removes the partial spool file, and a retry succeeds: the create retried with
the same Idempotency-Key answers the same version, the upload retried stores the whole file."""

import hashlib
import os
import random
import signal
import time

import pytest

from .conftest import RUNS, answer_or_none, create_model, new_name, timed

pytestmark = pytest.mark.faults_live
MiB = 1024 * 1024


@pytest.mark.parametrize("run", range(RUNS))
def test_a_worker_killed_mid_upload_leaves_no_row_and_no_file(registry, run):
    rng = random.Random(f"f1-{run}")
    with timed("F1 worker killed mid-upload"):
        model = create_model(registry, "f1")
        key = new_name("create")
        created = {"description": "fault run"}
        status, version = registry.request(
            "POST", f"/api/v1/models/{model}/versions", created, **{"Idempotency-Key": key}
        )
        assert status == 201, version
        path = f"/api/v1/models/{model}/versions/{version['number']}/files/weights.bin"
        body = rng.randbytes(rng.randint(2 * MiB, 12 * MiB))
        sent = rng.randint(1, len(body) - 1)  # a varied moment: after this many bytes

        upload = registry.open_upload(path, len(body))
        upload.sendall(body[:sent])
        worker = registry.worker_serving(upload)
        time.sleep(rng.uniform(0, 0.2))
        os.kill(worker, signal.SIGKILL)
        assert answer_or_none(upload) is None
        registry.wait_for_workers()

        assert registry.artifacts_of(model) == []

        status, again = registry.request(
            "POST", f"/api/v1/models/{model}/versions", created, **{"Idempotency-Key": key}
        )
        assert (status, again["number"]) == (201, version["number"])
        status, stored = registry.request("PUT", path, body)
        assert status == 201, stored
        assert stored["sha256"] == hashlib.sha256(body).hexdigest()
        registry.check_invariants(sweep=True)
        assert registry.upload_temp_files() == []  # the partial spool file is swept
