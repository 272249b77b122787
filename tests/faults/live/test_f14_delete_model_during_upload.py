"""F14: the model is deleted while an upload to one of its versions is in flight: while the body
streams in, or just as it has all arrived. No row and no stored file of the model is left, the
upload is refused with a 4xx (not a 500) unless it committed before the delete."""

import random
import time

import pytest

from .conftest import RUNS, create_model, create_version, read_answer, timed, wait_until

pytestmark = pytest.mark.faults_live
MOMENTS = ("streaming", "sent")


@pytest.mark.parametrize("run", range(RUNS))
def test_deleting_a_model_during_an_upload_leaves_no_row_and_no_file(registry, run):
    rng = random.Random(f"f14-{run}")
    moment = MOMENTS[run % 2]
    with timed("F14 model deleted while an upload is in flight"):
        model = create_model(registry, "f14")
        number = create_version(registry, model)
        [(model_id,)] = registry.query(
            "SELECT id FROM models_app_registeredmodel WHERE name = %s", (model,)
        )
        path = f"/api/v1/models/{model}/versions/{number}/files/weights.bin"
        body = rng.randbytes(rng.randint(1024 * 1024, 4 * 1024 * 1024))
        sent = rng.randint(1, len(body) - 1)

        upload = registry.open_upload(path, len(body))
        upload.sendall(body[:sent])
        wait_until(registry.upload_temp_files, timeout=20, what="the upload to spool")
        if moment == "streaming":
            deleted, answer = registry.request("DELETE", f"/api/v1/models/{model}")
            upload.sendall(body[sent:])
        else:
            upload.sendall(body[sent:])
            time.sleep(rng.uniform(0, 0.3))
            deleted, answer = registry.request("DELETE", f"/api/v1/models/{model}")
        assert deleted == 204, answer
        status, answer = read_answer(upload)
        assert status in ((404, 409) if moment == "streaming" else (201, 404, 409)), answer

        assert registry.query(
            "SELECT count(*) FROM models_app_registeredmodel WHERE id = %s", (model_id,)
        ) == [(0,)]
        assert registry.artifacts_of(model) == []
        assert not [f for f in registry.stored_files() if f.startswith(f"artifacts/{model_id}/")]
        assert registry.upload_temp_files() == []
        registry.check_invariants()
