"""The live fault suite's world: a PostgreSQL cluster and a gunicorn of its own.

The faults here need real processes: a worker killed with SIGKILL, a database cluster stopped
or killed (``pg_ctl stop -m immediate``) and started again. So the suite starts its own
PostgreSQL cluster (initdb and pg_ctl from /usr/lib/postgresql/*/bin, as the postgres user when
run as root, on a free loopback port, its data in a temporary folder: it never touches another
cluster) and its own gunicorn (gunicorn.conf.py, the project's settings, local file storage in a
temporary data dir, the fault points of core/faults.py switched on). Both are stopped and
removed at the end of the session.

The tests carry the ``faults_live`` marker, which pyproject's addopts deselect: the plain suite
starts no cluster; ``make faults`` and CI's faults step select them (``-m ""``). Each fault runs
``FAULT_RUNS`` times (3 by default, 20 for the full run); after each the sweeper runs where the
fault's expectation says so, then ``manage.py check_invariants``, which must find nothing
(both in one process: after_fault.py).
"""

import contextlib
import glob
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[3]
GUNICORN = Path(sys.executable).parent / "gunicorn"
RUNS = int(os.environ.get("FAULT_RUNS") or 3)
# Per fault: runs started, violations the checker named, wall time (the terminal summary).
TALLY: dict[str, dict[str, float]] = {}
CURRENT: list[str] = []  # the fault whose run is under way

# The live users' password: they sign decisions with it where the review policy asks.
PASSWORD = "fault-run-signing-1"  # noqa: S105 (a throw-away cluster's users)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, *, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# ---------------------------------------------------------------------------------------------
# PostgreSQL


class Cluster:
    """A PostgreSQL cluster this suite created: it may stop, kill and restart it."""

    def __init__(self, base: Path):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            pytest.fail("the live fault suite needs PostgreSQL's server (initdb, pg_ctl)")
        self.bin = Path(found[-1]).parent
        self.data = base / "pgdata"
        self.log = base / "postgres.log"
        self.port = free_port()
        self.as_root = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def init(self) -> None:
        self.data.mkdir()
        self.log.touch()
        if self.as_root:
            shutil.chown(self.data, "postgres", "postgres")
            shutil.chown(self.log, "postgres", "postgres")
        self.data.chmod(0o700)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` kills the server processes without a checkpoint: a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "registry") -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True
        )


# ---------------------------------------------------------------------------------------------
# The registry: manage.py commands and a gunicorn


class Registry:
    """The project served by a real gunicorn against the private cluster."""

    def __init__(self, base: Path, cluster: Cluster):
        self.cluster = cluster
        self.data_dir = base / "data"
        self.data_dir.mkdir()
        self.log = base / "gunicorn.log"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("S3_", "DJANGO_", "PYTEST_")) and k not in ("DEBUG", "HOST")
        }
        self.env.update(
            DJANGO_SETTINGS_MODULE="registry_site.settings",
            REGISTRY_DEV="1",
            REGISTRY_DATA_DIR=str(self.data_dir),
            DATABASE_URL=cluster.url("registry"),
            REGISTRY_FAULT_HOOKS="1",
            HOST="127.0.0.1",
            PORT=str(self.port),
            LOG_LEVEL="WARNING",
        )

    # -- commands

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(
                f"manage.py {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def check_invariants(self, *, sweep: bool = False, grace_minutes: int = 0) -> str:
        """``manage.py check_invariants`` (after ``sweep_orphans --min-age-minutes 0`` with
        ``sweep``: what a sweep an hour later would do), by default with no grace period: no
        stored file may lack its row, since no upload is in flight when a test checks."""
        args = ["--grace-minutes", str(grace_minutes)] + (["--sweep"] if sweep else [])
        result = subprocess.run(
            [sys.executable, "-m", "tests.faults.live.after_fault", *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if result.returncode != 0 and CURRENT:
            named = [line for line in result.stdout.splitlines() if line.strip()]
            TALLY[CURRENT[-1]]["violations"] += max(len(named), 1)
        assert result.returncode == 0, (
            f"check_invariants found violations:\n{result.stdout}\n{result.stderr}"
        )
        return result.stdout

    # -- the server

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [str(GUNICORN), "-c", "gunicorn.conf.py"],
            cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        out.close()
        wait_until(lambda: len(self.workers()) == 2 and self._answers(), timeout=60,
                   what="gunicorn to serve")  # fmt: skip

    def _answers(self) -> bool:
        try:
            return self.request("GET", "/healthz", token=None)[0] in (200, 503)
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self.proc = None
        return code

    def workers(self) -> list[int]:
        """The gunicorn master's children: its workers."""
        if self.proc is None:
            return []
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except FileNotFoundError:
            return []
        return [int(pid) for pid in children.split()]

    def worker_serving(self, client: socket.socket) -> int:
        """The worker holding the other end of ``client``'s connection (from /proc), once one
        has accepted it."""
        found: list[int] = []
        wait_until(lambda: found.append(self._worker_of(client)) or found[-1], timeout=20,
                   what="a worker to accept the connection")  # fmt: skip
        return found[-1]

    def _worker_of(self, client: socket.socket) -> int:
        local_port = client.getsockname()[1]
        wanted = f"{socket.htonl(0x7F000001):08X}:{self.port:04X}"
        remote = f":{local_port:04X}"
        inodes = set()
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] == wanted and fields[2].endswith(remote):
                inodes.add(f"socket:[{fields[9]}]")
        for pid in self.workers():
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return pid
        return 0

    def wait_for_workers(self) -> None:
        """After a worker died: until the master has replaced it."""
        wait_until(lambda: len(self.workers()) == 2 and self._answers(), timeout=60,
                   what="gunicorn to replace its worker")  # fmt: skip

    def arm(self, point: str) -> None:
        """The next process reaching fault point ``point`` kills itself (core/faults.py)."""
        (self.data_dir / "fault-point").write_text(point)

    def disarm(self) -> None:
        (self.data_dir / "fault-point").unlink(missing_ok=True)

    # -- HTTP

    token: str = ""

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def headers(self, token: str | None = "", **extra) -> dict:
        headers = {"Host": "127.0.0.1", **extra}
        token = self.token if token == "" else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def request(self, method: str, path: str, body=None, *, token: str | None = "", **headers):
        """(status, parsed JSON or text) of one request on a fresh connection."""
        conn = self.connection()
        try:
            if isinstance(body, dict):
                body = json.dumps(body)
                headers.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=body, headers=self.headers(token, **headers))
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode(errors="replace")

    def open_upload(self, path: str, size: int, *, token: str | None = "") -> socket.socket:
        """A PUT of ``size`` bytes whose headers are sent and body not yet: the caller streams
        it with ``sock.sendall`` and reads the answer with ``read_answer``."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        headers = self.headers(token, **{"Content-Length": str(size),
                                        "Content-Type": "application/octet-stream"})  # fmt: skip
        head = f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall((head + "Connection: close\r\n\r\n").encode())
        return sock

    # -- the database, read directly (no Django in the test process for this cluster)

    def query(self, sql: str, params=()) -> list[tuple]:
        with self.cluster.connect() as conn:
            return conn.execute(sql, params).fetchall()

    def artifacts_of(self, model: str) -> list[tuple[str, str]]:
        """(path, storage key) of every artifact row of the model's versions."""
        return self.query(
            "SELECT a.path, a.storage_key FROM models_app_artifact a"
            " JOIN models_app_modelversion v ON v.id = a.version_id"
            " JOIN models_app_registeredmodel m ON m.id = v.model_id WHERE m.name = %s",
            (model,),
        )

    def stored_files(self) -> set[str]:
        root = self.data_dir / "artifacts"
        return {str(p.relative_to(root.parent)) for p in root.rglob("*") if p.is_file()}

    def upload_temp_files(self) -> list[Path]:
        return [p for p in (self.data_dir / "tmp").rglob("*") if p.is_file()]


def read_answer(sock: socket.socket) -> tuple[int, dict | str]:
    """The HTTP answer on a raw socket: (status, JSON or text)."""
    sock.settimeout(60)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    if not data:
        raise ConnectionResetError("the server closed the connection without an answer")
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


def answer_or_none(sock: socket.socket) -> tuple[int, dict | str] | None:
    """The answer, or None when the connection died without one (its worker was killed)."""
    try:
        return read_answer(sock)
    except (ConnectionError, OSError, IndexError, ValueError):
        return None


@pytest.fixture(scope="session")
def live(tmp_path_factory) -> Registry:
    base = Path(tempfile.mkdtemp(prefix="faults-live-"))
    base.chmod(0o755)  # the postgres user walks into it
    cluster = Cluster(base)
    registry = None
    try:
        cluster.init()
        cluster.start()
        with cluster.connect("postgres") as conn:
            conn.execute("CREATE DATABASE registry")
        registry = Registry(base, cluster)
        registry.manage("migrate", "--noinput", "-v0")
        registry.manage(
            "shell", "-c",
            "from django.contrib.auth.models import User\n"
            "for name in ('owner', 'reviewer'):\n"
            "    User.objects.create_user(name, f'{name}@example.com', '" + PASSWORD + "')",
        )  # fmt: skip
        registry.token = registry.manage(
            "create_token", "owner", "--name", "faults", "--scope", "write"
        ).stdout.strip()
        registry.reviewer_token = registry.manage(
            "create_token", "reviewer", "--name", "faults", "--scope", "write"
        ).stdout.strip()
        registry.start()
        yield registry
    finally:
        if registry is not None and registry.proc is not None:
            registry.proc.kill()
            registry.proc.wait()
        if cluster.running():
            cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


def pytest_terminal_summary(terminalreporter):
    if not TALLY:
        return
    terminalreporter.section(
        "live faults (own PostgreSQL cluster and gunicorn; checker after each)"
    )
    for name, t in TALLY.items():
        terminalreporter.write_line(
            f"{name}: {int(t['runs'])} runs, {int(t['violations'])} violations, "
            f"{t['seconds']:.0f} s ({t['seconds'] / t['runs']:.1f} s per run)"
        )


@pytest.fixture
def registry(live: Registry) -> Registry:
    """The shared registry, up and answering, with no fault point armed."""
    if not live.cluster.running():
        live.cluster.start()
    if live.proc is None or live.proc.poll() is not None:
        live.proc = None
        live.start()
    live.disarm()
    yield live
    live.disarm()


@contextlib.contextmanager
def timed(name: str):
    """One run of fault ``name``: counted, timed, its violations tallied (terminal summary)."""
    tally = TALLY.setdefault(name, {"runs": 0, "violations": 0, "seconds": 0.0})
    tally["runs"] += 1
    CURRENT.append(name)
    start = time.monotonic()
    try:
        yield
    finally:
        seconds = time.monotonic() - start
        tally["seconds"] += seconds
        CURRENT.pop()
        if os.environ.get("FAULT_TALLY_FILE"):  # one line per run, for a run watched as it goes
            with open(os.environ["FAULT_TALLY_FILE"], "a") as out:
                out.write(f"{name}\t{seconds:.1f}\t{int(tally['violations'])}\n")


def retried(registry, *args):
    """What a client does with a 503: retry after a pause. A worker whose connection the
    database dropped within the last second has not health-checked it yet and fails one more
    request (docs/deploy.md, "Database"); that 503 may come before the body is sent."""
    for _ in range(3):
        try:
            status, answer = registry.request(*args)
        except ConnectionError as e:
            status, answer = None, str(e)
        if status != 503 and status is not None:
            return status, answer
        time.sleep(1)
    return status, answer


def new_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_model(registry: Registry, prefix: str) -> str:
    name = new_name(prefix)
    status, body = registry.request("POST", "/api/v1/models", {"name": name})
    assert status == 201, body
    return name


def create_version(registry: Registry, model: str, **headers) -> int:
    status, body = registry.request(
        "POST", f"/api/v1/models/{model}/versions", {"description": "fault run"}, **headers
    )
    assert status == 201, body
    return body["number"]
