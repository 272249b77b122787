"""registry_site/gunicorn_workers.py: kept-alive connections are spread over the workers."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"


def app(environ, start_response):
    """Answers with the serving worker's PID after 30 ms of work (the test's server)."""
    time.sleep(0.03)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(sock: socket.socket) -> int:
    """One request on a kept-alive connection; the PID of the worker that answered."""
    sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.split(b"\r\n\r\n", 1)[1]:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection"
        data += chunk
    return int(data.split(b"\r\n\r\n", 1)[1])


def serve(port: int, data_dir: Path) -> subprocess.Popen:
    """gunicorn.conf.py's settings (2 workers of BalancedThreadWorker, one thread each), serving
    the test's app."""
    proc = subprocess.Popen(
        [str(GUNICORN), "-c", "gunicorn.conf.py", "tests.registry_site.test_gunicorn_workers:app",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, "REGISTRY_DATA_DIR": str(data_dir)},
        stdout=subprocess.DEVNULL,  # the access log
    )  # fmt: skip
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("gunicorn did not start")


def test_clients_connecting_together_are_spread_over_both_workers(tmp_path):
    port = free_port()
    proc = serve(port, tmp_path)
    try:
        time.sleep(1)  # both workers booted and listening
        sockets = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(8)]
        answered_by: dict[int, set[int]] = {}

        def client(k: int) -> None:
            answered_by[k] = {ask(sockets[k]) for _ in range(5)}

        threads = [threading.Thread(target=client, args=(k,)) for k in range(len(sockets))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in sockets:
            s.close()
        assert len(answered_by) == len(sockets)  # every client got its five answers
        assert all(len(pids) == 1 for pids in answered_by.values())  # a connection stays put
        served = Counter(pids.pop() for pids in answered_by.values())
        # A worker busy with a request does not take new connections, so the eight clients
        # cannot all end up queued behind one worker while the other idles.
        assert len(served) == 2 and min(served.values()) >= 2, served
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0  # and it stops cleanly
