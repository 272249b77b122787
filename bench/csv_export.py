"""One CSV export of a model's versions, in process, on the database DATABASE_URL names (e.g.
one loaded by ``manage.py seed_scale``): time to the first and the last byte, rows, bytes,
the growth of the process's peak resident memory while it streams, and an MD5 of the content
(to compare two checkouts: run it from each).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/DB REGISTRY_DEV=1 \\
        .venv/bin/python bench/csv_export.py MODEL_SLUG USERNAME
"""

import hashlib
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_site.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def main(slug: str, username: str) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    settings.ALLOWED_HOSTS = ["*"]
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    client.get("/healthz")  # imports and connections made before the measure
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    response = client.get(f"/models/{slug}/versions.csv")
    first, size, lines, digest = None, 0, 0, hashlib.md5(usedforsecurity=False)
    for chunk in response.streaming_content:
        first = first or time.perf_counter() - started
        size += len(chunk)
        lines += chunk.count(b"\n")
        digest.update(chunk)
    last = time.perf_counter() - started
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(
        f"status {response.status_code}  rows {lines - 1}  bytes {size}  "
        f"first byte {first:.2f} s  last byte {last:.2f} s  peak RSS +{grown:.0f} MB  "
        f"md5 {digest.hexdigest()}"
    )


if __name__ == "__main__":
    main(*sys.argv[1:3])
