"""Which gunicorn worker type to run the registry with: sync vs gthread, measured with wrk.

Seeds a throw-away registry on PostgreSQL with the demo data, creates a read token, and runs
`wrk` (Debian package) for each worker setup against three endpoints: /healthz (no database),
a model page (HTML, about a dozen queries) and the MLflow get-model call (JSON). Connections
are kept alive by wrk; gunicorn's sync workers close them after each response, gthread workers
keep them.

    .venv/bin/python bench/workers.py [--seconds 10]
"""

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import base_env, gunicorn, manage, temp_data_dir, tree_rss_mib  # noqa: E402
from mlflow_compare import fresh_pg_database  # noqa: E402

SETUPS = [
    ("sync, 2 workers", {"workers": 2, "worker_class": "sync"}),
    ("gthread, 2 workers × 1 thread", {"workers": 2, "worker_class": "gthread", "threads": 1}),
    ("gthread, 2 workers × 4 threads", {"workers": 2, "worker_class": "gthread", "threads": 4}),
]
TARGETS = [
    ("/healthz", "healthz"),
    ("/models/card-fraud-detector/", "model page"),
    ("/api/2.0/mlflow/registered-models/get?name=card-fraud-detector", "MLflow get model"),
]


def wrk(url: str, token: str, seconds: int) -> tuple[float, float]:
    out = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", "-H", f"Authorization: Bearer {token}",
         url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    value, unit = float(p50.group(1)), p50.group(2)
    return rate, value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    env = base_env(temp_data_dir(), DATABASE_URL=fresh_pg_database("registry_workers"))
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "collectstatic", "--noinput", "-v0")
    manage(env, "seed_demo", "--quiet-logins")
    token = manage(env, "create_token", "admin", "--name", "wrk").strip()
    print("| setup | endpoint | requests/s | p50 ms | memory MiB |\n|---|---|---|---|---|")
    for label, options in SETUPS:
        with gunicorn(env, **options) as (url, pid):
            for path, name in TARGETS:
                rate, p50 = wrk(url + path, token, args.seconds)
                print(f"| {label} | {name} | {rate:.0f} | {p50:.1f} | {tree_rss_mib(pid):.0f} |")


if __name__ == "__main__":
    main()
