"""Settings for the test suite: the real settings, made fast and hermetic."""

import os
import tempfile

os.environ.setdefault("REGISTRY_DEV", "1")
os.environ.setdefault("REGISTRY_DATA_DIR", tempfile.mkdtemp(prefix="registry-test-"))

from registry_site.settings import *  # noqa: E402,F403
from registry_site.settings import STATIC_ROOT, STORAGES  # noqa: E402

STATIC_ROOT.mkdir(parents=True, exist_ok=True)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
DEBUG = False
AXES_VERBOSE = False
LOGGING = {**LOGGING, "loggers": {**LOGGING["loggers"], "axes": {"level": "WARNING"}}}  # noqa: F405
# The object-store locations the suite registers external sources from.
REGISTRY_EXTERNAL_SOURCES = ["s3://bucket/", "s3://b/"]
