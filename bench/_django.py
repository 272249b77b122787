"""Shared by the in-process benchmarks (access_queries.py, version_lock.py): a checkout's Django,
set up on a fresh SQLite file or PostgreSQL database, migrated."""

import os
import subprocess
import sys
from pathlib import Path

PG = "postgres://postgres@127.0.0.1:5432"


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", sql],
        check=True, capture_output=True,
    )  # fmt: skip


def set_up_django(root: Path, backend: str, database: str, data_dir: str) -> None:
    os.environ.update(
        REGISTRY_DEV="1",
        REGISTRY_DATA_DIR=data_dir,
        DJANGO_SETTINGS_MODULE="registry_site.settings",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("DATABASE_URL", None)
    if backend == "postgres":
        psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        psql(f"CREATE DATABASE {database}")
        os.environ["DATABASE_URL"] = f"{PG}/{database}"
    os.chdir(root)
    sys.path.insert(0, str(root))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
