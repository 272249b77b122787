"""gunicorn.conf.py: what an instance started with it logs, and the control socket it keeps."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).parent / "gunicorn"


def app(environ, start_response):
    """The test's server: answers 200 to anything."""
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(data_dir: Path, log: Path) -> tuple[subprocess.Popen, int]:
    """gunicorn with gunicorn.conf.py, bound from PORT, its stdout and stderr into log."""
    port = free_port()
    env = {**os.environ, "REGISTRY_DATA_DIR": str(data_dir), "PORT": str(port)}
    env.pop("HOST", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(GUNICORN), "-c", "gunicorn.conf.py", "tests.test_gunicorn_conf:app"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    for _ in range(100):
        if (data_dir / "gunicorn.ctl").exists():  # opened once the workers are spawned
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return proc, port
            except OSError:
                pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"gunicorn did not start:\n{log.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_the_access_log_leaves_out_query_strings(tmp_path):
    proc, port = serve(tmp_path, tmp_path / "log")
    try:
        url = f"http://127.0.0.1:{port}/api/v1/models?token=mrt_secret-in-the-query"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (http on loopback)
            assert response.status == 200
    finally:
        stop(proc)
    log = (tmp_path / "log").read_text()
    assert '"GET /api/v1/models HTTP/1.1" 200' in log
    assert "secret-in-the-query" not in log


def test_two_instances_on_one_host_each_keep_their_control_socket(tmp_path):
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first, _ = serve(first_dir, tmp_path / "first.log")
    try:
        second, _ = serve(second_dir, tmp_path / "second.log")
        stop(second)
        assert not (second_dir / "gunicorn.ctl").exists()  # removed by its own instance
        # gunicorn 27's default, one path per user, would be gone now with the second instance.
        assert (first_dir / "gunicorn.ctl").is_socket()
    finally:
        stop(first)
