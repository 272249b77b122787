"""How long registering a version that names many datasets keeps others waiting.

Every registration of a model queues on the model's row from the moment its number is taken
(PostgreSQL: the UPDATE of ``next_version_number``) until the commit; on SQLite every write of
the whole registry queues from the transaction's ``BEGIN IMMEDIATE`` until the commit. This
measures that span for ``services.version_create`` with --datasets datasets (50, the most a
version may name), in two cases: all of them new (the version registers them) and all of them
known (registered before, named with their URI and digest). Timed from the statement that
takes the lock (recorded by an execute wrapper) until ``version_create`` returns, i.e. after
the commit; also counted: the statements run in that span.

Each checkout measured (this one, and with --compare another, e.g. ``git archive main`` unpacked
somewhere) runs in a process of its own against a fresh database of its own; a first round is
discarded as warm-up. Prints the median and 95th percentile per case.

    .venv/bin/python bench/version_lock.py [--backend sqlite|postgres] [--reps 30]
    mkdir /tmp/before && git archive main | tar -x -C /tmp/before
    .venv/bin/python bench/version_lock.py --compare /tmp/before
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _django import psql, set_up_django

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "version_lock_bench"


def measure(root: Path, backend: str, database: str, reps: int, n: int) -> dict:
    """Run in the checkout's own process: {case: {"ms": [...], "statements": [...]}}."""
    with tempfile.TemporaryDirectory() as data_dir:
        set_up_django(root, backend, database, data_dir)
        from django.contrib.auth.models import User
        from django.db import connection

        from models_app import services
        from models_app.metadata import parse_metadata

        user = User.objects.create_user("bench")
        model = services.model_create(actor=user, name="bench-model")
        for i in range(n):
            services.dataset_create(
                actor=user, name=f"known-{i}", uri=f"s3://data/known-{i}", digest=f"sha256:{i}"
            )
        events: list[tuple[float, str]] = []

        def record(execute, sql, params, many, context):
            events.append((time.perf_counter(), sql))
            return execute(sql, params, many, context)

        def lock_taken() -> int:
            for i, (_, sql) in enumerate(events):
                if backend == "sqlite" and sql.startswith("BEGIN"):
                    return i
                if backend == "postgres" and "next_version_number" in sql and "UPDATE" in sql:
                    return i
            raise RuntimeError("no statement took the lock")

        cases = {
            "new": lambda r: [
                {"name": f"new-{r}-{i}", "uri": f"s3://data/new-{r}-{i}", "digest": f"sha256:{i}"}
                for i in range(n)
            ],
            "known": lambda r: [
                {"name": f"known-{i}", "uri": f"s3://data/known-{i}", "digest": f"sha256:{i}"}
                for i in range(n)
            ],
        }
        results = {case: {"ms": [], "statements": []} for case in cases}
        for r in range(reps + 1):
            for case, datasets in cases.items():
                metadata = parse_metadata({"datasets": datasets(r), "metrics": {"auc": 0.9}})
                events.clear()
                with connection.execute_wrapper(record):
                    services.version_create(actor=user, model=model, metadata=metadata)
                end = time.perf_counter()
                start = lock_taken()
                if r:  # the first round warms up
                    results[case]["ms"].append((end - events[start][0]) * 1000)
                    results[case]["statements"].append(len(events) - start)
        connection.close()
    if backend == "postgres":
        psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    return results


def run_checkout(root: Path, backend: str, database: str, reps: int, n: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", str(root), "--backend", backend,
         "--database", database, "--reps", str(reps), "--datasets", str(n)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--datasets", type=int, default=50)
    parser.add_argument("--compare", type=Path, help="another checkout, measured alongside")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--database", default=DATABASE, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        results = measure(args.measure, args.backend, args.database, args.reps, args.datasets)
        print(json.dumps(results))
        return
    checkouts = {"this": (ROOT, DATABASE)}
    if args.compare:
        checkouts["compare"] = (args.compare.resolve(), DATABASE + "_compare")
    print(f"{args.backend}, {args.datasets} datasets per version, {args.reps} versions per case")
    print(f"{'checkout':<10}{'case':<8}{'lock held, median':>20}{'p95':>10}{'statements':>12}")
    for label, (root, database) in checkouts.items():
        results = run_checkout(root, args.backend, database, args.reps, args.datasets)
        for case, r in results.items():
            ms = sorted(r["ms"])
            p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
            print(
                f"{label:<10}{case:<8}{statistics.median(ms):>17.1f} ms{p95:>7.1f} ms"
                f"{statistics.median(r['statements']):>12.0f}"
            )


if __name__ == "__main__":
    main()
