"""Every page and list at scale, as each persona sees it, timed by the server.

Serves the registry with gunicorn exactly as README runs it (``gunicorn -c gunicorn.conf.py``:
its workers, worker class and timeout) against DATABASE_URL, with ``REGISTRY_SERVER_TIMING=1``
so that each response says its total time, database time and number of queries. Signs in as
each persona of ``manage.py seed_scale`` (``scale-admin``, a superuser; ``scale-reviewer``,
who sees and reviews a few per cent of the models) and requests every page N times, one
request at a time. The JSON and MLflow APIs are called with a read token of the persona.

    # a registry loaded with seed_scale (bench/README.md), then:
    .venv/bin/python bench/pages.py --database-url postgres://postgres@127.0.0.1:5432/scale \\
        --out bench/pages-results.md
    # CI: a tiny registry on SQLite, 3 repetitions, fails if a page does not answer 200
    .venv/bin/python bench/pages.py --smoke

Prints a markdown table (p50/p95 of the server's total and database milliseconds, queries,
bytes; for the CSV export, the time to its last byte seen by the client and the server's peak
resident memory) and writes it to ``--out``.
"""

import argparse
import contextlib
import http.client
import math
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._server import (  # noqa: E402 (the repository's root on the path first)
    ROOT,
    base_env,
    children,
    free_port,
    manage,
    rss_kib,
    temp_data_dir,
)

PASSWORD = "demo-registry-2026"  # registry_site/demo/users.py DEMO_PASSWORD, the personas'
PERSONAS = {"admin": "scale-admin", "reviewer": "scale-reviewer"}
TIMING = re.compile(r'total;dur=([\d.]+), db;dur=([\d.]+), queries;desc="(\d+)"')
SMOKE_SIZES = ["--models", "40", "--versions", "6", "--big-model", "120"]


# ---------------------------------------------------------------------------------------------
# HTTP: one keep-alive connection per persona, cookies kept by hand


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict
    seconds: float  # client side, to the last byte


class Client:
    def __init__(self, base: str):
        parts = urllib.parse.urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        self.cookies: dict[str, str] = {}
        self.token = ""

    def request(self, method: str, path: str, body: str | None = None, api=False) -> Answer:
        headers = {"Host": f"{self.host}:{self.port}"}
        if api and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        elif self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"http://{self.host}:{self.port}{path}"
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                # the worker went away (gunicorn's timeout, or the connection was idle-closed)
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
                if attempt == 2:
                    raise
        seconds = time.perf_counter() - started
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        return Answer(response.status, data, dict(response.getheaders()), seconds)

    def sign_in(self, username: str) -> None:
        page = self.request("GET", "/accounts/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1)
        form = urllib.parse.urlencode(
            {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token.decode()}
        )
        answer = self.request("POST", "/accounts/login/", form)
        if answer.status != 302:
            raise RuntimeError(f"{username} could not sign in ({answer.status})")


# ---------------------------------------------------------------------------------------------
# What to measure


@dataclass
class Targets:
    big_model: str
    big_in_review: int | None
    big_version: int
    compare_ids: list[int]
    holdout_id: int
    big_train_id: int
    big_train_last: str  # the cursor whose next page is the big training set's last
    # Cursors whose next page is the last one (the pages' Next links are cursors; a ?page=N
    # deep in the list is ignored, so it would measure the first page again).
    models_last: str
    models_latest_last: str
    big_last: str
    big_metric_last: str
    team: str
    owner: str


def find_targets(env: dict) -> Targets:
    """The names and ids the pages need, read from the database with the ORM (a subprocess, so
    that this process never imports Django)."""
    script = (
        "from models_app.models import ModelVersion as V, Dataset as D, RegisteredModel as M\n"
        "from registry_site.demo import scale as s\n"
        "from core import keyset\n"
        "from models_app.selectors import LINK_KEYS\n"
        "big = M.objects.get(name=s.BIG_MODEL)\n"
        "review = V.objects.filter(model=big, status='in_review').order_by('-number').first()\n"
        "top = V.objects.filter(model=big).order_by('-number').values_list('number', 'id')[:2]\n"
        "team = M.objects.filter(team__isnull=False).order_by('pk').first()\n"
        "bt = D.objects.get(name=s.BIG_TRAIN)\n"
        "oldest = bt.version_links.order_by('version_id', 'role')[25]\n"
        "from models_app.selectors import MODEL_SORTS\n"
        "from models_app import version_grid as g\n"
        "def before_last(sort):\n"
        "    keys = MODEL_SORTS[sort][1]\n"
        "    row = M.objects.order_by(*keyset.ordering(keys, reverse=True))[25]\n"
        "    return keyset.encode(row, keys)\n"
        "def grid_before_last(sort):\n"
        "    sort = g.parse_sort(sort)\n"
        "    if sort.field == 'number':\n"
        "        row = big.versions.order_by('number')[25]\n"
        "        return g._cursor(row, sort)\n"
        "    pk, value = g._metric_sorted_ids(big, sort, None, True, 26)[25]\n"
        "    row = V.objects.get(pk=pk)\n"
        "    row.sort_value = value\n"
        "    return g._cursor(row, sort)\n"
        "print(big.name, review.number if review else 0, top[0][0], top[0][1], top[1][1],\n"
        "      D.objects.get(name=s.HOLDOUT).pk, D.objects.get(name=s.BIG_TRAIN).pk,\n"
        "      team.team.name, team.owner.username, keyset.encode(oldest, LINK_KEYS),\n"
        "      before_last('name'), before_last('-latest'), grid_before_last('-number'),\n"
        "      grid_before_last('-metric:auc@test'))\n"
    )
    out = manage(env, "shell", "-v0", "-c", script).splitlines()[-1].split()
    return Targets(
        big_model=out[0],
        big_in_review=int(out[1]) or None,
        big_version=int(out[2]),
        compare_ids=[int(out[3]), int(out[4])],
        holdout_id=int(out[5]),
        big_train_id=int(out[6]),
        team=out[7],
        owner=out[8],
        big_train_last=out[9],
        models_last=out[10],
        models_latest_last=out[11],
        big_last=out[12],
        big_metric_last=out[13],
    )


def pages(t: Targets) -> list[tuple[str, str, bool]]:
    """(label, path, is_api) of every page and list measured."""
    big = f"/models/{t.big_model}/"
    version = f"{big}versions/{t.big_version}/"
    review = f"{big}versions/{t.big_in_review or t.big_version}/review/"
    mlflow = "/api/2.0/mlflow/"
    q = urllib.parse.quote
    rows = [
        ("dashboard", "/"),
        ("models list", "/models/"),
        ("models list, last page", f"/models/?after={t.models_last}"),
        ("models sorted by name", "/models/?sort=name"),
        ("models sorted by recently updated", "/models/?sort=-updated_at"),
        ("models sorted by newest", "/models/?sort=-created_at"),
        ("models sorted by latest version", "/models/?sort=-latest"),
        (
            "models sorted by latest version, last page",
            f"/models/?sort=-latest&after={t.models_latest_last}",
        ),
        ("models filtered by team", f"/models/?team={q(t.team)}"),
        ("models filtered by owner", f"/models/?owner={q(t.owner)}"),
        ("models filtered by framework", "/models/?framework=xgboost"),
        ("models filtered by task", "/models/?task=regression"),
        ("models filtered by tag", "/models/?tag=domain%3Dfraud"),
        ("models filtered by status in review", "/models/?status=in_review"),
        ("models filtered by status approved", "/models/?status=approved"),
        ("models search (word)", "/models/?q=fraud"),
        ("models search (name)", "/models/?q=scale-model-00042"),
        ("reviews inbox", "/reviews/"),
        ("datasets list", "/datasets/"),
        ("dataset linked across models", f"/datasets/{t.holdout_id}/"),
        ("dataset of the big model", f"/datasets/{t.big_train_id}/"),
        # (A dataset's pages seek by cursor: its last page is the one after the 26th-oldest link.)
        (
            "dataset of the big model, last page",
            f"/datasets/{t.big_train_id}/?after={t.big_train_last}",
        ),
        ("big model", big),
        ("big model sorted by a metric", f"{big}?sort=-metric:auc@test"),
        ("big model, last page", f"{big}?after={t.big_last}"),
        (
            "big model sorted by a metric, last page",
            f"{big}?sort=-metric:auc@test&after={t.big_metric_last}",
        ),
        ("version page", version),
        ("review page", review),
        ("aliases", f"{big}aliases/"),
        ("audit", "/audit/"),
        ("compare", "/compare/?" + "&".join(f"v={i}" for i in t.compare_ids)),
    ]
    api = [
        ("API models", "/api/v1/models"),
        ("API dataset linked across models", f"/api/v1/datasets/{t.holdout_id}"),
        ("API dataset of the big model", f"/api/v1/datasets/{t.big_train_id}"),
        (
            "API dataset of the big model, last page",
            f"/api/v1/datasets/{t.big_train_id}?after={t.big_train_last}",
        ),
        ("MLflow registered-models/search", f"{mlflow}registered-models/search?max_results=100"),
        (
            "MLflow model-versions/search",
            f"{mlflow}model-versions/search?max_results=100&filter=" + q(f"name='{t.big_model}'"),
        ),
    ]
    return [(label, path, False) for label, path in rows] + [
        (label, path, True) for label, path in api
    ]


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Row:
    persona: str
    label: str
    path: str
    statuses: set = field(default_factory=set)
    total: list = field(default_factory=list)
    db: list = field(default_factory=list)
    queries: list = field(default_factory=list)
    sizes: list = field(default_factory=list)
    client: list = field(default_factory=list)
    peak_mib: float | None = None
    error: str = ""


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def measure(client: Client, row: Row, repeat: int, api: bool) -> None:
    for _ in range(repeat):
        try:
            answer = client.request("GET", row.path, api=api)
        except (OSError, http.client.HTTPException) as e:
            row.error = f"{type(e).__name__}: {e}"
            row.statuses.add("error")
            return
        row.statuses.add(answer.status)
        timing = TIMING.search(answer.headers.get("Server-Timing", ""))
        if timing:
            row.total.append(float(timing[1]))
            row.db.append(float(timing[2]))
            row.queries.append(int(timing[3]))
        row.sizes.append(len(answer.body))
        row.client.append(answer.seconds * 1000)


class PeakMemory:
    """The largest resident set of any worker of the server while a request runs (sampled
    every 20 ms)."""

    def __init__(self, master: int):
        self.master = master
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for pid in children(self.master):
                with contextlib.suppress(FileNotFoundError, AttributeError):  # a worker gone
                    self.peak_kib = max(self.peak_kib, rss_kib(pid))
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run(
    env: dict, repeat: int, personas: list[str], only: list[str] | None = None
) -> tuple[list[Row], dict]:
    targets = find_targets(env)
    port = int(env["PORT"])
    args = [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py"]
    log = Path(env["REGISTRY_DATA_DIR"]) / "gunicorn.log"  # its error log, shown on failure
    with log.open("wb") as stderr:
        server = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    rows: list[Row] = []
    info = {"targets": targets}
    info["log"] = log
    try:
        _wait_for(base)
        for persona in personas:
            username = PERSONAS[persona]
            client = Client(base)
            client.sign_in(username)
            name = f"bench-pages-{time.time_ns()}"  # token names are unique per user
            client.token = manage(
                env, "create_token", username, "--name", name, "--scope", "read",
                "--expires-days", "1",
            ).strip()  # fmt: skip
            client.request("GET", "/")  # the worker's first request (imports, connection)
            for label, path, api in pages(targets):
                if only and not any(word in label for word in only):
                    continue
                row = Row(persona, label, path)
                measure(client, row, repeat, api)
                rows.append(row)
                print(_line(row), flush=True)
            label = "big model's CSV export"
            if only and not any(word in label for word in only):
                continue
            row = Row(persona, label, f"/models/{targets.big_model}/versions.csv")
            with PeakMemory(server.pid) as memory:
                measure(client, row, 1, False)
            row.peak_mib = memory.peak_kib / 1024
            rows.append(row)
            print(_line(row), flush=True)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    return rows, info


def _wait_for(base: str) -> None:
    for _ in range(300):
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def _line(row: Row) -> str:
    if not row.total:
        return f"{row.persona:<8} {row.label:<45} {sorted(map(str, row.statuses))} {row.error}"
    return (
        f"{row.persona:<8} {row.label:<45} {','.join(map(str, sorted(row.statuses, key=str)))} "
        f"total p50 {pct(row.total, 50):8.1f} ms, db p50 {pct(row.db, 50):8.1f} ms, "
        f"{_queries(row)} queries"
    )


def _queries(row: Row) -> str:
    lo, hi = min(row.queries), max(row.queries)
    return str(lo) if lo == hi else f"{lo}–{hi}"


def table(rows: list[Row]) -> str:
    lines = [
        "| persona | page | status | total p50 ms | total p95 ms | db p50 ms | db p95 ms "
        "| queries | KiB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        status = ",".join(map(str, sorted(r.statuses, key=str)))
        if not r.total:
            lines.append(f"| {r.persona} | {r.label} | {status} {r.error} | | | | | | |")
            continue
        label = r.label
        if r.peak_mib is not None:
            label += (
                f" (last byte after {pct(r.client, 50) / 1000:.1f} s; "
                f"worker peak RSS {r.peak_mib:.0f} MiB)"
            )
        lines.append(
            f"| {r.persona} | {label} | {status} | {pct(r.total, 50):.1f} | "
            f"{pct(r.total, 95):.1f} | {pct(r.db, 50):.1f} | {pct(r.db, 95):.1f} | "
            f"{_queries(r)} | {statistics.median(r.sizes) / 1024:.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--repeat", type=int, default=20, help="Requests per page (20).")
    parser.add_argument("--quick", action="store_true", help="3 requests per page.")
    parser.add_argument("--smoke", action="store_true", help="A tiny seed on SQLite (CI).")
    parser.add_argument("--persona", action="append", choices=sorted(PERSONAS))
    parser.add_argument("--jit", choices=["on", "off"], help="PostgreSQL JIT (DATABASE_JIT).")
    parser.add_argument("--port", type=int, default=0, help="Port to serve on (a free one).")
    parser.add_argument("--out", help="Write the markdown table here too.")
    parser.add_argument(
        "--only",
        action="append",
        metavar="TEXT",
        help="Only the pages whose label contains TEXT (repeatable), e.g. --only dataset.",
    )
    args = parser.parse_args()
    repeat = 3 if args.quick or args.smoke else args.repeat
    data_dir = temp_data_dir()
    env = base_env(
        data_dir,
        REGISTRY_SERVER_TIMING="1",
        HOST="127.0.0.1",
        PORT=str(args.port or free_port()),
    )
    if args.jit:
        env["DATABASE_JIT"] = "1" if args.jit == "on" else "0"
    manage(env, "collectstatic", "--noinput", "-v0")  # into the temporary data dir
    if args.smoke:
        manage(env, "migrate", "-v0")
        manage(env, "seed_scale", *SMOKE_SIZES)
        where = "SQLite, seed_scale " + " ".join(SMOKE_SIZES)
    else:
        if not args.database_url:
            parser.error("give --database-url (or DATABASE_URL), or --smoke")
        env["DATABASE_URL"] = args.database_url
        where = args.database_url.rsplit("@", 1)[-1]
    personas = args.persona or list(PERSONAS)
    started = time.monotonic()
    rows, info = run(env, repeat, personas, args.only)
    text = (
        f"Measured with `bench/pages.py` on {where}, {repeat} requests per page"
        + (f", JIT {args.jit}" if args.jit else "")
        + f", {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        + f" ({time.monotonic() - started:.0f} s).\n\n"
        + table(rows)
        + "\n"
    )
    print()
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    failed = [r for r in rows if r.statuses != {200}]
    if failed:
        print("gunicorn's log (last lines):")
        print("\n".join(info["log"].read_text(errors="replace").splitlines()[-40:]))
    for r in failed:
        print(f"FAILED: {r.persona} {r.label} {r.path}: {sorted(map(str, r.statuses))} {r.error}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
