"""The registry's MLflow-compatible API side by side with a stock `mlflow server`, in one run.

Both servers get the same workload through MLflow's REST API (plain HTTP/1.1 over sockets; by
default each client thread keeps its connection alive for the whole run, as the MLflow client's
pooled session does; a server may still close it after each answer, as gunicorn's sync workers
do; `--connections close` sends `Connection: close` instead): populate M models × V versions,
then measure, interleaving the two servers round by round:
  - create-version throughput with 1 and 8 clients,
  - p50/p95 latency of: get model, get version, get by alias, search the versions of one model,
    a page of 100 models,
  - throughput of gets with 8 clients,
  - memory of each server's whole process tree at the end: RSS (shared pages counted in every
    process) and PSS (shared pages split between the processes sharing them).

Stock MLflow runs from its own venv (bench/.mlflow-venv, created on first use with
`mlflow==3.17.2`), `--workers 2`, job execution off; the registry runs under gunicorn with
2 workers of one thread each of the gthread class docs/deploy.md recommends, which leaves new
connections to an idle worker (`--worker-class gthread` for gunicorn's own, `sync` for sync
workers). Backends: PostgreSQL (default) or SQLite for both (`--backend sqlite`).

    .venv/bin/python bench/mlflow_compare.py                      # 100 × 100 = 10,000 versions
    .venv/bin/python bench/mlflow_compare.py --models 5 --versions 4 --only registry   # smoke
"""

import argparse
import json as _json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import (  # noqa: E402
    ROOT,
    base_env,
    descendants,
    free_port,
    gunicorn,
    manage,
    temp_data_dir,
    tree_pss_mib,
    tree_rss_mib,
)

MLFLOW_VENV = ROOT / "bench" / ".mlflow-venv"
MLFLOW_VERSION = "3.17.2"
PG = "postgres://postgres@127.0.0.1:5432"
API = "/api/2.0/mlflow"


class Connection:
    """One HTTP/1.1 connection over a plain socket, kept alive between calls.

    The load generator shares the two cores with both servers, so its own CPU is CPU a server
    lacks: ``requests`` costs ~2 ms per call here and ``http.client`` ~0.2–0.3 ms (it parses
    headers with the email package); this ~0.1 ms (measured on a get, bench/README.md). It
    speaks just what both servers answer: a status line, headers, then a body of
    ``Content-Length`` bytes, chunks, or everything until the server closes.
    """

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.sock: socket.socket | None = None
        self.buffer = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def _until(self, marker: bytes) -> int:
        while (at := self.buffer.find(marker)) < 0:
            self._more()
        return at

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._more()
        taken, self.buffer = self.buffer[:n], self.buffer[n:]
        return taken

    def request(self, method: str, target: str, body: bytes | None, headers: dict):
        """Send one request and read its answer: (status, body, whether the server closes)."""
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port), timeout=60)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        head = self._take(self._until(b"\r\n\r\n") + 4).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        fields = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip().lower()
        closes = fields.get("connection") == "close"
        if "content-length" in fields:
            content = self._take(int(fields["content-length"]))
        elif fields.get("transfer-encoding") == "chunked":
            parts = []
            while size := int(self._take(self._until(b"\r\n") + 2).split(b";")[0], 16):
                parts.append(self._take(size + 2)[:-2])
            while self._take(self._until(b"\r\n") + 2) != b"\r\n":
                pass  # trailer fields, up to the empty line
            content = b"".join(parts)
        else:  # the body runs to the end of the connection
            try:
                while True:
                    self._more()
            except ConnectionError:
                pass
            content, closes = self.buffer, True
        if closes:
            self.close()
        return status, content


class Server:
    """A client of one server. Each client thread keeps its own connection (``--connections
    pooled``, the default) or opens one per call (``close``)."""

    pooled = True  # set from --connections

    def __init__(self, name: str, url: str, pid: int, headers: dict, database: str = ""):
        self.name, self.url, self.pid, self.headers = name, url, pid, headers
        self.database = database  # the PostgreSQL database, if any
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.local = threading.local()
        self.pools: dict[int, ThreadPoolExecutor] = {}

    def pool(self, clients: int) -> ThreadPoolExecutor:
        """The same client threads (and so the same connections) for every round: pooled
        connections stay open for the whole run, as a long-running client's do."""
        if clients not in self.pools:
            self.pools[clients] = ThreadPoolExecutor(clients)
        return self.pools[clients]

    def close(self) -> None:
        for pool in self.pools.values():
            pool.shutdown()

    def connection(self) -> Connection:
        if not hasattr(self.local, "connection"):
            self.local.connection = Connection(self.host, self.port)
        return self.local.connection

    def call(self, method: str, path: str, *, params: dict | None = None, json=None) -> dict:
        target = API + path + ("?" + urllib.parse.urlencode(params) if params else "")
        headers = dict(self.headers)
        body = None
        if json is not None:
            body = _json.dumps(json).encode()
            headers["Content-Type"] = "application/json"
        if not self.pooled:
            headers["Connection"] = "close"
        conn = self.connection()
        try:
            status, content = conn.request(method, target, body, headers)
        except ConnectionError:
            conn.close()  # the server dropped a kept-alive connection: one retry on a new one
            status, content = conn.request(method, target, body, headers)
        if status != 200:
            raise RuntimeError(f"{self.name} {method} {path}: {status} {content[:200]}")
        return _json.loads(content) if content else {}


# ---------------------------------------------------------------------------------------------
# Starting the servers


def psql(sql: str, database: str = "postgres") -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-qc", sql],
        check=True, capture_output=True,
    )  # fmt: skip


def fresh_pg_database(name: str) -> str:
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(f"CREATE DATABASE {name}")
    return f"{PG}/{name}"


WORKER_CLASSES = {
    "balanced": "registry_site.gunicorn_workers.BalancedThreadWorker",
    "gthread": "gthread",
    "sync": "sync",
}


@contextmanager
def registry_server(
    backend: str,
    worker_class: str = "balanced",
    *,
    database: str = "registry_bench",
    access_log: Path | None = None,
):
    """The registry under gunicorn, with a user ``bench`` holding a write token; on PostgreSQL
    in the fresh database ``database``. ``access_log``: a file for gunicorn's access log."""
    data = temp_data_dir()
    db = fresh_pg_database(database) if backend == "postgres" else ""
    # Versions name an external source in the benchmark's bucket, as against MLflow.
    env = base_env(
        data, REGISTRY_EXTERNAL_SOURCES="s3://bench-bucket/", **({"DATABASE_URL": db} if db else {})
    )
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "collectstatic", "--noinput", "-v0")
    manage(env, "shell", "-c",
           "from django.contrib.auth.models import User;"
           "User.objects.create_user('bench', password='bench-password-123456')")  # fmt: skip
    token = manage(env, "create_token", "bench", "--name", "bench", "--scope", "write").strip()
    # docs/deploy.md: gthread workers with one thread each keep the client's connections open
    # (the registry's own class also spreads them over the workers); sync workers close every
    # one after its response.
    with gunicorn(
        env, workers=2, worker_class=WORKER_CLASSES[worker_class], threads=1,
        access_log=access_log,
    ) as (url, pid):  # fmt: skip
        yield Server(
            "registry", url, pid, {"Authorization": f"Bearer {token}"},
            database=database if db else "",
        )  # fmt: skip


def ensure_mlflow_venv() -> Path:
    exe = MLFLOW_VENV / "bin" / "mlflow"
    if not exe.exists():
        print(f"creating {MLFLOW_VENV} with mlflow=={MLFLOW_VERSION} (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
        uv = Path(sys.executable).parent / "uv"
        installer = [str(uv), "pip", "install", "-q", "--python", str(MLFLOW_VENV / "bin/python")]
        if not uv.exists():
            installer = [str(MLFLOW_VENV / "bin/pip"), "install", "-q"]
        subprocess.run([*installer, f"mlflow=={MLFLOW_VERSION}", "psycopg2-binary"], check=True)
    return exe


@contextmanager
def mlflow_server(backend: str, *, database: str = "mlflow_bench", access_log: Path | None = None):
    """Stock ``mlflow server`` with its artifact proxy (files in a temp dir); on PostgreSQL in the
    fresh database ``database``. ``access_log``: a file for uvicorn's access log (its stdout)."""
    exe = ensure_mlflow_venv()
    workdir = tempfile.mkdtemp(prefix="mlflow-bench-")
    if backend == "postgres":
        store = fresh_pg_database(database).replace("postgres://", "postgresql+psycopg2://")
    else:
        store = f"sqlite:///{workdir}/mlflow.db"
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    out = open(access_log, "ab") if access_log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [str(exe), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
         "--backend-store-uri", store, "--serve-artifacts",
         "--artifacts-destination", f"{workdir}/artifacts"],
        cwd=workdir, env=env, stdout=out, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        # Its workers import the server after the parent has started: 12 s of CPU each, minutes
        # on a busy machine. They listen only once they have.
        deadline = time.monotonic() + 600
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("mlflow server did not start") from None
                time.sleep(0.2)
        yield Server(
            "mlflow", url, proc.pid, {}, database=database if backend == "postgres" else ""
        )
    finally:
        tree = descendants(proc.pid)  # uvicorn and its workers, which may outlive mlflow
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        for pid in tree:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if access_log:
            out.close()


# ---------------------------------------------------------------------------------------------
# Workload


def create_version(server: Server, model: str, i: int) -> None:
    server.call("POST", "/model-versions/create",
                json={"name": model, "source": f"s3://bench-bucket/{model}/{i}"})  # fmt: skip


def populate(server: Server, models: int, versions: int) -> None:
    def one_model(m: int) -> None:
        name = f"bench-model-{m:04d}"
        server.call("POST", "/registered-models/create", json={"name": name})
        for i in range(versions):
            create_version(server, name, i)
        server.call("POST", "/registered-models/alias",
                    json={"name": name, "alias": "champion", "version": "1"})  # fmt: skip

    list(server.pool(8).map(one_model, range(models)))


def create_throughput(server: Server, clients: int, count: int, tag: str) -> float:
    name = f"throughput-{tag}-{clients}"
    server.call("POST", "/registered-models/create", json={"name": name})
    started = time.perf_counter()
    list(server.pool(clients).map(lambda i: create_version(server, name, i), range(count)))
    return count / (time.perf_counter() - started)


def operations(models: int, versions: int) -> dict:
    def pick() -> str:
        return f"bench-model-{random.randrange(models):04d}"

    return {
        "get model": lambda s: s.call("GET", "/registered-models/get", params={"name": pick()}),
        "get version": lambda s: s.call(
            "GET",
            "/model-versions/get",
            params={"name": pick(), "version": str(random.randint(1, versions))},
        ),  # fmt: skip
        "get by alias": lambda s: s.call(
            "GET", "/registered-models/alias", params={"name": pick(), "alias": "champion"}
        ),
        "search versions of a model": lambda s: s.call(
            "GET",
            "/model-versions/search",
            params={"filter": f"name='{pick()}'", "max_results": "1000"},
        ),  # fmt: skip
        "page of 100 models": lambda s: s.call(
            "GET", "/registered-models/search", params={"max_results": "100"}
        ),
    }


def latencies(server: Server, op, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        op(server)
        out.append((time.perf_counter() - t) * 1000)
    return out


def get_throughput(server: Server, ops: dict, seconds: float) -> float:
    funcs = [ops["get model"], ops["get version"], ops["get by alias"]]
    done = [0] * 8
    stop = time.perf_counter() + seconds

    def worker(k: int) -> None:
        while time.perf_counter() < stop:
            random.choice(funcs)(server)
            done[k] += 1

    list(server.pool(8).map(worker, range(8)))  # 8 idle client threads: one worker each
    return sum(done) / seconds


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--samples", type=int, default=200, help="requests per latency figure")
    parser.add_argument("--creates", type=int, default=200, help="versions per create figure")
    parser.add_argument(
        "--seconds",
        type=float,
        default=10,
        help="length of the gets/s run of each server (in 4 interleaved parts)",
    )
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--only", choices=["registry", "mlflow"], default=None)
    parser.add_argument("--connections", choices=["pooled", "close"], default="pooled")
    parser.add_argument(
        "--worker-class",
        choices=list(WORKER_CLASSES),
        default="balanced",
        help="gunicorn worker class of the registry (2 workers, 1 thread each)",
    )
    args = parser.parse_args()
    Server.pooled = args.connections == "pooled"
    random.seed(7)

    with ExitStack() as stack:
        servers = []
        if args.only in (None, "registry"):
            servers.append(stack.enter_context(registry_server(args.backend, args.worker_class)))
            stack.callback(servers[-1].close)
        if args.only in (None, "mlflow"):
            servers.append(stack.enter_context(mlflow_server(args.backend)))
            stack.callback(servers[-1].close)
        for s in servers:
            t = time.perf_counter()
            populate(s, args.models, args.versions)
            print(f"populated {s.name}: {args.models * args.versions} versions in "
                  f"{time.perf_counter() - t:.0f} s", file=sys.stderr)  # fmt: skip
            if s.database:  # fresh statistics for the planner, as autovacuum gives within minutes
                psql("ANALYZE", s.database)

        results: dict[str, dict[str, float]] = {s.name: {} for s in servers}
        rounds = 4
        for clients in (1, 8):
            for r in range(rounds):  # interleaved: registry, mlflow, registry, mlflow, ...
                for s in servers:
                    rate = create_throughput(s, clients, args.creates // rounds, f"r{r}")
                    results[s.name].setdefault(f"create/s, {clients} client(s)", []).append(rate)
        ops = operations(args.models, args.versions)
        for name, op in ops.items():
            samples = {s.name: [] for s in servers}
            for _ in range(rounds):
                for s in servers:
                    samples[s.name] += latencies(s, op, max(1, args.samples // rounds))
            for s in servers:
                results[s.name][f"{name} p50 ms"] = pct(samples[s.name], 50)
                results[s.name][f"{name} p95 ms"] = pct(samples[s.name], 95)
        for _ in range(rounds):  # interleaved too: a slower moment of the machine hits both
            for s in servers:
                rate = get_throughput(s, ops, args.seconds / rounds)
                results[s.name].setdefault("gets/s, 8 clients", []).append(rate)
        for s in servers:
            results[s.name]["server memory MiB (RSS)"] = tree_rss_mib(s.pid)
            results[s.name]["server memory MiB (PSS)"] = tree_pss_mib(s.pid)

    report(results, args)


def report(results: dict, args) -> None:
    rows = list(next(iter(results.values())).keys())
    names = list(results)
    print(f"\n{args.models} models × {args.versions} versions, {args.backend} backends, "
          f"{args.samples} samples per latency, {args.connections} connections\n")  # fmt: skip
    header = f"| {'measure':<36} | " + " | ".join(f"{n:>10}" for n in names)
    if len(names) == 2:
        header += " | registry ÷ mlflow |"
    print(header)
    print(
        "|"
        + "-" * 38
        + "|"
        + "|".join("-" * 12 for _ in names)
        + ("|" + "-" * 19 + "|" if len(names) == 2 else "")
    )
    for row in rows:
        values = []
        for n in names:
            v = results[n][row]
            values.append(statistics.mean(v) if isinstance(v, list) else v)
        line = f"| {row:<36} | " + " | ".join(f"{v:>10.1f}" for v in values)
        if len(names) == 2 and values[1]:
            line += f" | {values[0] / values[1]:>17.2f} |"
        print(line)


if __name__ == "__main__":
    main()
