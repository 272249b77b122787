"""F5 on S3: the connection to the object store is cut, or stops answering, in the middle of an
upload (a real TCP proxy between the registry and the moto S3 server, cutting after a number
of request bytes that varies with the run). The upload answers 503, records nothing and leaves
no object; once the store answers again the same upload succeeds.

(F6 does not apply to S3: downloads are redirects to presigned URLs, the registry does not
read the object.)"""

import contextlib
import os
import socket
import threading

import pytest
from botocore.config import Config
from django.test import Client

from models_app.models import Artifact
from registry_site.tokens import token_create
from tests import factories
from tests.conftest import s3_storage_settings
from tests.faults.conftest import RUNS, check
from tests.models_app.test_register import stored_keys

pytestmark = pytest.mark.django_db


class CuttingProxy:
    """Forwards TCP to ``upstream``; when armed, after ``cut_after`` bytes from the client it
    either closes both sides (a reset) or stops forwarding (a hang, for the client's timeout)."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.cut_after: int | None = None
        self.hang = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self.open += [client, server]
            budget = [self.cut_after]
            threading.Thread(target=self._pipe, args=(client, server, budget), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, None), daemon=True).start()

    def _pipe(self, source, target, budget):
        try:
            while data := source.recv(65536):
                if budget is not None and budget[0] is not None:
                    if len(data) >= budget[0]:
                        target.sendall(data[: budget[0]])
                        if self.hang:
                            threading.Event().wait(30)
                        source.close()
                        target.close()
                        return
                    budget[0] -= len(data)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, target):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self):
        self.listener.close()
        for s in self.open:
            s.close()


@pytest.fixture
def s3_behind_proxy(s3_storage, s3_server, settings, tmp_path):
    """The artifact storage on a fresh moto bucket, reached through a CuttingProxy."""
    host, port = s3_server.removeprefix("http://").split(":")
    proxy = CuttingProxy((host, int(port)))
    options = s3_storage_settings(f"http://127.0.0.1:{proxy.port}", settings.S3_BUCKET)
    options["OPTIONS"]["client_config"] = Config(
        connect_timeout=2, read_timeout=1, retries={"max_attempts": 1, "mode": "standard"}
    )
    (tmp_path / "spool").mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    settings.STORAGES = {**settings.STORAGES, "default": options}
    yield proxy
    proxy.close()


@pytest.mark.parametrize("run", RUNS)
def test_f5_s3_connection_cut_or_hung_mid_upload_answers_503(run, s3_behind_proxy, owner):
    model = factories.registered_model(owner, "fraud")
    version = factories.version(model, owner)
    _, secret = token_create(actor=owner, user=owner, name="t", scope="write")
    client = Client(headers={"Authorization": f"Bearer {secret}"})
    body = os.urandom(200_000 + run)
    url = f"/api/v1/models/{model.name}/versions/{version.number}/files/model.bin"
    s3_behind_proxy.cut_after = 1_000 + 9_000 * run  # into the headers, or the body
    s3_behind_proxy.hang = run % 3 == 2
    response = client.put(url, body, content_type="application/octet-stream")
    assert response.status_code == 503, response.content
    assert "unavailable" in response.json()["error"]["message"]
    assert not Artifact.objects.exists()
    s3_behind_proxy.cut_after = None  # the store answers again
    assert stored_keys("artifacts") == []
    check("F5 S3 cut or timeout mid-upload")
    response = client.put(url, body, content_type="application/octet-stream")
    assert response.status_code == 201, response.content
    check("F5 S3 cut or timeout mid-upload")
