"""Bad settings stop start-up with one line naming the variable, not a traceback."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_check(tmp_path, **env) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REGISTRY_DEV", "SECRET_KEY", "DATABASE_URL", "DEBUG")
    }
    clean.update(
        {"REGISTRY_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "registry_site.settings"}
    )
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"REGISTRY_DEV": "1", "DATABASE_URL": "nonsense"}, "DATABASE_URL"),
        ({"REGISTRY_DEV": "1", "DATABASE_URL": "mongodb://x/y"}, "DATABASE_URL"),
        ({}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"SECRET_KEY": "x" * 50}, "ALLOWED_HOSTS"),
        ({"REGISTRY_DEV": "maybe"}, "REGISTRY_DEV"),
        ({"REGISTRY_DEV": "1", "REGISTRY_MAX_UPLOAD_BYTES": "lots"}, "REGISTRY_MAX_UPLOAD_BYTES"),
        (
            {"REGISTRY_DEV": "1", "DATABASE_CONN_HEALTH_CHECKS": "sometimes"},
            "DATABASE_CONN_HEALTH_CHECKS",
        ),
        ({"DEBUG": "1", "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "a"}, "DEBUG"),
        (
            {"REGISTRY_FAULT_HOOKS": "1", "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "a"},
            "REGISTRY_FAULT_HOOKS",
        ),
        (
            {"REGISTRY_DEV": "1", "REGISTRY_EXTERNAL_SOURCES": "my-bucket"},
            "REGISTRY_EXTERNAL_SOURCES",
        ),
        ({"REGISTRY_DEV": "1", "REGISTRY_EXTERNAL_SOURCES": "s3://"}, "REGISTRY_EXTERNAL_SOURCES"),
    ],
)
def test_bad_setting_stops_with_one_line_naming_the_variable(tmp_path, env, variable):
    result = run_check(tmp_path, **env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Configuration error: {variable}:")
    assert "Traceback" not in result.stderr


def test_production_configuration_passes_deploy_check(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k not in ("REGISTRY_DEV", "DEBUG")},
            "DJANGO_SETTINGS_MODULE": "registry_site.settings",
            "REGISTRY_DATA_DIR": str(tmp_path),
            "SECRET_KEY": "a-production-secret-key-that-is-long-and-random-0123456789",
            "ALLOWED_HOSTS": "registry.example.org",
            "SECURE_HSTS_PRELOAD": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_without_preload_warns_only_about_the_decided_w021(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k not in ("REGISTRY_DEV", "DEBUG")},
            "DJANGO_SETTINGS_MODULE": "registry_site.settings",
            "REGISTRY_DATA_DIR": str(tmp_path),
            "SECRET_KEY": "a-production-secret-key-that-is-long-and-random-0123456789",
            "ALLOWED_HOSTS": "registry.example.org",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    ids = re.findall(r"\((\w+\.[WE]\d+)\)", result.stderr)
    assert ids == ["security.W021"], result.stderr


def test_makemigrations_check_runs_on_a_bare_checkout(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("REGISTRY_DEV", "SECRET_KEY")}
    env.update(
        {"REGISTRY_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "registry_site.settings"}
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


def database_options(tmp_path, **env) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REGISTRY_"))}
    clean.update(REGISTRY_DEV="1", REGISTRY_DATA_DIR=str(tmp_path), **env)
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'registry_site.settings';"
        "from django.conf import settings; print(settings.DATABASES['default'].get('OPTIONS'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_postgresql_prepares_statements_unless_turned_off(tmp_path):
    url = "postgres://registry@db.example.org:5432/registry"
    assert "'server_side_binding': True" in database_options(tmp_path, DATABASE_URL=url)
    off = database_options(tmp_path, DATABASE_URL=url, DATABASE_PREPARED_STATEMENTS="0")
    assert "server_side_binding" not in off
    sqlite = database_options(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3")
    assert "server_side_binding" not in sqlite
