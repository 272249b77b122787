"""Shared plumbing for the benchmarks: a throw-away registry served by gunicorn on loopback."""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env: dict, *args: str, input_text: str | None = None) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, input=input_text,
        capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def base_env(data_dir: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S3_", "DATABASE_URL"))}
    env.update(
        REGISTRY_DEV="1",
        REGISTRY_DATA_DIR=data_dir,
        DJANGO_SETTINGS_MODULE="registry_site.settings",
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


@contextmanager
def gunicorn(
    env: dict,
    *,
    workers: int = 1,
    worker_class: str = "sync",
    threads: int = 1,
    access_log: Path | None = None,
):
    """Serve the registry with gunicorn.conf.py, the production settings, and these overrides;
    yields (base_url, master_pid). Stops it by PID on exit.

    The access log is written as in production, to stdout, which goes nowhere here (or to the
    file ``access_log``, to count requests) so that it costs what it costs in production without
    mixing into the benchmark's output. The long timeout is for sync workers, which it limits
    per request (a 1 GiB upload)."""
    port = free_port()
    args = [
        str(Path(PYTHON).parent / "gunicorn"), "-c", "gunicorn.conf.py",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
        "--worker-class", worker_class, "--threads", str(threads),
        "--timeout", "600", "--log-level", "warning",
    ]  # fmt: skip
    out = open(access_log, "ab") if access_log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not start")
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if access_log:
            out.close()


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))


def descendants(pid: int) -> list[int]:
    found = []
    for child in children(pid):
        found += [child, *descendants(child)]
    return found


def pss_kib(pid: int) -> int:
    """Proportional set size: shared pages split among the processes sharing them."""
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    return int(re.search(r"^Pss:\s+(\d+) kB", text, re.M).group(1))


def tree_rss_mib(root: int) -> float:
    """Resident memory of a server's whole process tree (master, workers, their children), in
    MiB. Pages shared between processes are counted once per process."""
    return sum(rss_kib(p) for p in [root, *descendants(root)]) / 1024


def tree_pss_mib(root: int) -> float:
    """Like tree_rss_mib, but pages shared between processes are counted once in all."""
    return sum(pss_kib(p) for p in [root, *descendants(root)]) / 1024


def temp_data_dir() -> str:
    return tempfile.mkdtemp(prefix="registry-bench-")
