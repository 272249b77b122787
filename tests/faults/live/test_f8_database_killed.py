"""F8: PostgreSQL killed (``pg_ctl stop -m immediate``) just after a 201: what was answered
201 is there after the restart."""

import random
import time

import pytest

from .conftest import RUNS, create_model, create_version, retried, timed

pytestmark = pytest.mark.faults_live


@pytest.mark.parametrize("run", range(RUNS))
def test_what_was_answered_201_survives_a_database_crash(registry, run):
    rng = random.Random(f"f8-{run}")
    with timed("F8 database killed after a 201"):
        model = create_model(registry, "f8")
        number = create_version(registry, model)
        kind = ("model", "version", "file")[run % 3]
        if kind == "model":
            model, number = create_model(registry, "f8"), None
        elif kind == "version":
            number = create_version(registry, model)
        body = rng.randbytes(rng.randint(1, 256 * 1024))
        status, answer = registry.request(
            "PUT", f"/api/v1/models/{model}/versions/{number}/files/model.bin", body
        ) if kind == "file" else (201, None)  # fmt: skip
        assert status == 201, answer
        time.sleep(rng.uniform(0, 0.05))
        registry.cluster.stop("immediate")
        registry.cluster.start()

        # A worker's connection that served a request within the last second is not
        # health-checked: its first request after the restart may be a 503 (docs/deploy.md).
        status, answer = retried(registry, "GET", f"/api/v1/models/{model}")
        assert status == 200, answer
        if number is not None:
            status, version = retried(registry, "GET", f"/api/v1/models/{model}/versions/{number}")
            assert status == 200, version
        if kind == "file":
            assert [(f["path"], f["size"]) for f in version["files"]] == [("model.bin", len(body))]
            status, _ = registry.request(
                "GET", f"/api/v1/models/{model}/versions/{number}/files/model.bin"
            )
            assert status == 200
        registry.check_invariants()
