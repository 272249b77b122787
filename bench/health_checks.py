"""What the connection health check costs a request, and what registry_site/health_checks.py saves.

With health checks on (``DATABASE_CONN_HEALTH_CHECKS``, the default), Django sends ``SELECT 1``
on a persistent connection before the first query of each request, so that a connection the
database dropped is replaced instead of failing the request; registry_site/health_checks.py skips
the check on a connection that served a request within the last second. Three settings:
  - every request: Django's check before every request (health_checks.py's receivers off),
  - after 1 s idle: the check skipped on a connection used within the last second (default),
  - off: ``DATABASE_CONN_HEALTH_CHECKS=0``.
Measured on a cheap API call (MLflow get model with a token: two queries), back to back,
through Django's WSGI handler in this process (it sends the request signals a server sends),
on a throw-away PostgreSQL database, in blocks of requests that go round the three settings,
so that a slower moment of the machine hits each. Per request: wall time (the check's round
trip included) and this process's CPU.

    .venv/bin/python bench/health_checks.py [--blocks 20] [--requests 300]
"""

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import ROOT, base_env, manage, temp_data_dir  # noqa: E402
from mlflow_compare import fresh_pg_database  # noqa: E402

MODEL = "health-check-bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=20, help="blocks per setting")
    parser.add_argument("--requests", type=int, default=300, help="requests per block")
    parser.add_argument("--database", default="registry_health_checks", help="dropped, made anew")
    args = parser.parse_args()

    data = temp_data_dir()
    (Path(data) / "staticfiles").mkdir()  # whitenoise's root; no static file is asked for
    env = base_env(data, DATABASE_URL=fresh_pg_database(args.database))
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "shell", "-c",
           "from django.contrib.auth.models import User;"
           "User.objects.create_user('bench', password='bench-password-123456')")  # fmt: skip
    token = manage(env, "create_token", "bench", "--name", "bench", "--scope", "write").strip()
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))

    from django.core.wsgi import get_wsgi_application
    from django.db import connections

    from registry_site import health_checks as recent

    handler = get_wsgi_application()
    base = {
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "SCRIPT_NAME": "",
        "wsgi.url_scheme": "http", "HTTP_AUTHORIZATION": f"Bearer {token}",
    }  # fmt: skip

    def call(method: str, path: str, query: str = "", body: bytes = b"") -> None:
        statuses = []
        environ = {
            **base, "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }  # fmt: skip
        response = handler(environ, lambda status, headers: statuses.append(status))
        b"".join(response)
        response.close()  # request_finished, as a server sends it
        if not statuses[0].startswith("200"):
            raise RuntimeError(f"{method} {path}: {statuses[0]}")

    def choose(checks: bool, skip_recent: bool) -> None:
        for conn in connections.all():
            conn.settings_dict["CONN_HEALTH_CHECKS"] = checks
            conn.health_check_enabled = checks  # what Django sets from the setting on connecting
        if skip_recent:
            recent.connect()
        else:
            recent.disconnect()

    settings = {  # (health checks, health_checks.py's skip)
        "every request (Django's)": (True, False),
        "after 1 s idle (the registry's)": (True, True),
        "off": (False, True),
    }

    call("POST", "/api/2.0/mlflow/registered-models/create", body=f'{{"name": "{MODEL}"}}'.encode())
    get = ("GET", "/api/2.0/mlflow/registered-models/get", f"name={MODEL}")
    for _ in range(args.requests):  # warm: caches, prepared statements
        call(*get)

    wall: dict[str, list[float]] = {name: [] for name in settings}
    cpu: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(args.blocks):
        for name, setting in settings.items():
            choose(*setting)
            started, started_cpu = time.perf_counter(), time.process_time()
            for _ in range(args.requests):
                call(*get)
            wall[name].append((time.perf_counter() - started) / args.requests * 1000)
            cpu[name].append((time.process_time() - started_cpu) / args.requests * 1000)

    print(f"\n{args.blocks} blocks of {args.requests} MLflow get-model calls per setting, "
          "PostgreSQL, one process\n")  # fmt: skip
    print("| health check | wall ms per request | CPU ms per request | wall − off, paired |")
    print("|---|---|---|---|")
    for name in settings:
        paired = [a - b for a, b in zip(wall[name], wall["off"], strict=True)]
        low, _, high = statistics.quantiles(paired, n=4)
        print(f"| {name} | {statistics.median(wall[name]):.3f} | "
              f"{statistics.median(cpu[name]):.3f} | {statistics.median(paired):+.3f} "
              f"({low:+.3f} to {high:+.3f}) |")  # fmt: skip
    print("\nMedians over the blocks; the last column's range is the middle half of the pairs.")


if __name__ == "__main__":
    main()
