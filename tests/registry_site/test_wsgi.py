"""registry_site/wsgi.py: a worker is ready for its first request when it has loaded the app."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc, sys
import registry_site.wsgi
print("registry_site.urls" in sys.modules, "registry_site.api.api" in sys.modules,
      gc.get_freeze_count() > 100000)
"""


def test_loading_the_wsgi_app_loads_every_view_and_freezes_what_it_loaded(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(REGISTRY_DEV="1", REGISTRY_DATA_DIR=str(tmp_path))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # The URLconf (and with it the JSON API's schema models) is imported at start-up, not on the
    # first request; the objects loaded by then are out of the garbage collector's way.
    assert result.stdout.split() == ["True", "True", "True"]
