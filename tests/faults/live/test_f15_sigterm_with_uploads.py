"""F15: SIGTERM to gunicorn's master while uploads stream in. The workers drain: every upload a
worker had accepted completes (201, its row and file there); gunicorn exits cleanly; after the
restart nothing is left half-done (anything cut off would fall under F1 and F2)."""

import hashlib
import random
import signal
import time

import pytest

from .conftest import RUNS, answer_or_none, create_model, create_version, timed

pytestmark = pytest.mark.faults_live


@pytest.mark.parametrize("run", range(RUNS))
def test_sigterm_drains_the_uploads_in_flight(registry, run):
    rng = random.Random(f"f15-{run}")
    with timed("F15 SIGTERM to gunicorn with uploads in flight"):
        model = create_model(registry, "f15")
        number = create_version(registry, model)
        uploads = []
        for i in range(2):  # two workers of one thread each: two uploads in flight
            path = f"/api/v1/models/{model}/versions/{number}/files/part-{i}.bin"
            body = rng.randbytes(rng.randint(1024 * 1024, 6 * 1024 * 1024))
            sent = rng.randint(1, len(body) - 1)
            sock = registry.open_upload(path, len(body))
            sock.sendall(body[:sent])
            registry.worker_serving(sock)  # accepted: in flight
            uploads.append((f"part-{i}.bin", body, sent, sock))
            time.sleep(0.1)

        master = registry.proc
        master.send_signal(signal.SIGTERM)
        time.sleep(rng.uniform(0, 1))
        for _, body, sent, sock in uploads:
            sock.sendall(body[sent:])
        answers = [answer_or_none(sock) for *_, sock in uploads]
        assert master.wait(timeout=60) == 0
        registry.proc = None

        assert [a and a[0] for a in answers] == [201, 201], answers
        stored = {path: sha for path, sha in registry.query(
            "SELECT a.path, a.sha256 FROM models_app_artifact a"
            " JOIN models_app_modelversion v ON v.id = a.version_id"
            " JOIN models_app_registeredmodel m ON m.id = v.model_id WHERE m.name = %s",
            (model,),
        )}  # fmt: skip
        assert stored == {p: hashlib.sha256(b).hexdigest() for p, b, *_ in uploads}
        registry.start()
        registry.check_invariants(sweep=True)
