"""F7: PostgreSQL stops, or drops the worker's connection, while an upload streams in. The
answer is a 503 with a plain message, no row and no stored file are left, requests while the
database is down are 503 too, and after the restart a retry succeeds."""

import hashlib
import random

import pytest

from core.errors import DATABASE_UNAVAILABLE

from .conftest import (
    RUNS,
    create_model,
    create_version,
    read_answer,
    retried,
    timed,
    wait_until,
)

pytestmark = pytest.mark.faults_live
# How the database goes away: a clean stop (sessions terminated), a crash (processes killed,
# no checkpoint), or only the worker's connection reset while the cluster stays up.
HOW = ("fast", "immediate", "reset")


def reset_connections(registry) -> None:
    registry.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = 'registry' AND pid <> pg_backend_pid()"
    )


@pytest.mark.parametrize("run", range(RUNS))
def test_the_database_going_away_mid_upload_is_a_503_and_leaves_nothing(registry, run):
    rng = random.Random(f"f7-{run}")
    how = HOW[run % 3]
    with timed("F7 database stopped or connection reset mid-request"):
        model = create_model(registry, "f7")
        number = create_version(registry, model)
        path = f"/api/v1/models/{model}/versions/{number}/files/weights.bin"
        body = rng.randbytes(rng.randint(1024 * 1024, 6 * 1024 * 1024))
        sent = rng.randint(1, len(body) - 1)
        stored_before = registry.stored_files()

        upload = registry.open_upload(path, len(body))
        upload.sendall(body[:sent])
        # The worker has checked the token and the version and is spooling the body.
        wait_until(registry.upload_temp_files, timeout=20, what="the upload to spool")
        if how == "reset":
            reset_connections(registry)
        else:
            registry.cluster.stop(how)
        upload.sendall(body[sent:])
        status, answer = read_answer(upload)
        assert status == 503, answer
        assert answer == {"error": {"code": "unavailable", "message": DATABASE_UNAVAILABLE}}

        if how != "reset":
            status, answer = registry.request("GET", f"/api/v1/models/{model}")
            assert status == 503, answer
            registry.cluster.start()
        assert registry.artifacts_of(model) == []
        assert registry.stored_files() == stored_before
        assert registry.upload_temp_files() == []

        status, stored = retried(registry, "PUT", path, body)
        assert status == 201, stored
        assert stored["sha256"] == hashlib.sha256(body).hexdigest()
        registry.check_invariants()
