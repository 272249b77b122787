"""Settings for the model registry, read from environment variables.

Every setting a deployment may change is an environment variable (secrets may also come from
``NAME_FILE``). A bad value stops start-up with ``ImproperlyConfigured`` naming the variable.

Two modes:
- development (``REGISTRY_DEV=1``, what ``make run`` sets): a secret key is generated into the
  data dir, DEBUG may be on, email goes to the console;
- production (the default): ``SECRET_KEY`` must be given, cookies are secure, HSTS is on.
"""

import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    """A string from NAME, or from the file named by NAME_FILE (for Docker/Kubernetes secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as e:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {file_name}: {e.strerror}") from e
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}: expected true/false (1/0, yes/no), got {value!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected a whole number, got {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name}: must be at least {minimum}, got {number}")
    return number


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEV_MODE = env_bool("REGISTRY_DEV")
DEBUG = env_bool("DEBUG")
if DEBUG and not DEV_MODE:
    raise ImproperlyConfigured("DEBUG: only allowed together with REGISTRY_DEV=1")

# The one folder to back up: SQLite database, local artifacts, the dev secret key.
DATA_DIR = Path(os.environ.get("REGISTRY_DATA_DIR") or BASE_DIR / "var").resolve()
try:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
except OSError as e:
    raise ImproperlyConfigured(f"REGISTRY_DATA_DIR: cannot create {DATA_DIR}: {e.strerror}") from e


def _dev_secret_key() -> str:
    key_file = DATA_DIR / "dev-secret-key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEV_MODE:
        raise ImproperlyConfigured(
            "SECRET_KEY: required in production (or set REGISTRY_DEV=1 for a local dev key)"
        )
    SECRET_KEY = _dev_secret_key()
elif len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY: must be at least 32 characters long")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEV_MODE else "")
if not ALLOWED_HOSTS and not DEV_MODE:
    raise ImproperlyConfigured("ALLOWED_HOSTS: required in production (comma-separated hosts)")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "guardian",
    "axes",
    "core",
    "audit",
    "registry_site",
    "registry_site.api",
    "registry_site.mlflow_compat",
    "models_app",
    "tracking",
    "approvals",
    "exchange",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "audit.middleware.AuditContextMiddleware",
    "registry_site.middleware.TokenAuthMiddleware",
    "registry_site.middleware.DeniedActionAuditMiddleware",
    "axes.middleware.AxesMiddleware",
    "registry_site.middleware.StorageErrorMiddleware",
]

# Server-Timing header (total, database time, queries) on every response, for measuring where
# pages are served (bench/pages.py; docs/deploy.md). Off unless REGISTRY_SERVER_TIMING=1: it
# tells every client how long the database took.
SERVER_TIMING = env_bool("REGISTRY_SERVER_TIMING", False)
if SERVER_TIMING:
    MIDDLEWARE.insert(0, "registry_site.timing.ServerTimingMiddleware")

ROOT_URLCONF = "registry_site.urls"
WSGI_APPLICATION = "registry_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "registry_site.context_processors.site",
                "approvals.views.inbox.review_count",
            ],
        },
    },
]

# Database: SQLite in the data dir unless DATABASE_URL says otherwise.
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'registry.sqlite3'}"


def _database(url: str) -> dict:
    import dj_database_url

    if "://" not in url:
        raise ImproperlyConfigured(
            f"DATABASE_URL: not a database URL: {url!r} "
            "(expected e.g. postgres://user@host:5432/name or sqlite:///path)"
        )
    health_checks = env_bool("DATABASE_CONN_HEALTH_CHECKS", True)
    try:
        config = dj_database_url.parse(url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60))
    except ValueError as e:
        raise ImproperlyConfigured(f"DATABASE_URL: {e}") from None
    if not config.get("ENGINE"):
        raise ImproperlyConfigured(f"DATABASE_URL: unsupported database scheme in {url!r}")
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL and a busy timeout keep a single-machine SQLite registry usable with several
        # workers; IMMEDIATE transactions avoid "database is locked" on upgrade to write.
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
        config["CONN_MAX_AGE"] = 0
    elif config["ENGINE"] == "django.db.backends.postgresql":
        # A persistent connection is checked (SELECT 1) before its first query of a request,
        # so that one the database dropped is replaced instead of failing the request; except
        # one that served a request within the last second (registry_site/health_checks.py),
        # so that under load the check costs nothing (bench/health_checks.py).
        config["CONN_HEALTH_CHECKS"] = health_checks
        # Server-side binding lets psycopg prepare the statements a connection runs repeatedly:
        # a prepared lookup costs PostgreSQL ~0.1 ms instead of ~0.5 ms of planning (measured,
        # bench/README.md). Behind PgBouncer in transaction mode, set it to 0.
        if env_bool("DATABASE_PREPARED_STATEMENTS", True):
            config.setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=2)
        # PostgreSQL's JIT compiles a plan whose estimated cost passes jit_above_cost; it pays
        # off on long analytic scans, not on pages meant to answer in < 100 ms. Measured at 1.1
        # million versions (bench/README.md, "JIT"): it compiled for 42.5 ms in a 4.5 s
        # models-list plan (EXPLAIN ANALYZE), 40 % of a page's budget for any plan estimated
        # over the threshold, while page totals with it on or off were within this shared
        # machine's noise. Off unless DATABASE_JIT=1.
        settings_sent = [] if env_bool("DATABASE_JIT", False) else ["-c jit=off"]
        # A prepared statement switches to one generic plan after five runs when PostgreSQL
        # judges it no dearer than the custom ones; for skewed data (a model of 100,000
        # versions among models of 100) that plan walks the big model's rows for every model:
        # the big model's page went from 35 ms of queries in its first requests to 100-120 ms
        # from the sixth (bench/pages.py --repeat 20). Each run is planned for its own values;
        # parsing is still saved. DATABASE_PLAN_CACHE_MODE=auto restores PostgreSQL's default.
        plan_cache = os.environ.get("DATABASE_PLAN_CACHE_MODE", "force_custom_plan")
        if plan_cache != "auto":
            settings_sent.append(f"-c plan_cache_mode={plan_cache}")
        if settings_sent:
            config.setdefault("OPTIONS", {})["options"] = " ".join(settings_sent)
    return config


DATABASES = {"default": _database(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A CSRF refusal is not a denied action of the signed-in user: it is not audited.
CSRF_FAILURE_VIEW = "registry_site.middleware.csrf_failure"

AUTHENTICATION_BACKENDS = [
    "audit.throttle.SignInThrottleBackend",  # axes': refuses sign-in while throttled; first
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# No anonymous user row: anonymous visitors see only the login page and /healthz.
ANONYMOUS_USER_NAME = None

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Sign-in throttling: after AXES_FAILURE_LIMIT failures for a username, or from an address,
# further attempts are refused for AXES_COOLOFF_MINUTES. Both parameters count separately, so
# an attacker cycling addresses is stopped by the username and one hammering many usernames by
# the address; the cool-off means nobody can lock a victim out for good.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# Attempts refused during a lockout write nothing (axes would otherwise update its row on each
# one, appending the request to it, and restart the cool-off); nor does the audit app
# (audit/throttle.py). Failures are counted in audit.FailedSignIn, pruned by
# `manage.py prune_failed_sign_ins`.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# Static files: whitenoise serves compressed, hashed files collected into the data dir.
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or DATA_DIR / "staticfiles")

# Artifact storage: local files in the data dir, or S3 when a bucket is named.
S3_BUCKET = os.environ.get("S3_BUCKET", "")
MEDIA_ROOT = DATA_DIR / "artifacts"
if S3_BUCKET:
    from botocore.config import Config as BotoConfig

    addressing = os.environ.get("S3_ADDRESSING_STYLE", "path")
    if addressing not in ("path", "virtual", "auto"):
        raise ImproperlyConfigured(
            f"S3_ADDRESSING_STYLE: expected path, virtual or auto, got {addressing!r}"
        )
    ARTIFACT_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": os.environ.get("S3_ENDPOINT_URL") or None,
            "access_key": env_str("S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY") or None,
            "region_name": os.environ.get("S3_REGION") or None,
            "location": os.environ.get("S3_PREFIX", ""),
            "addressing_style": addressing,
            "signature_version": "s3v4",
            "file_overwrite": False,
            "default_acl": None,
            "querystring_expire": env_int("S3_PRESIGNED_SECONDS", 300, minimum=10),
            "client_config": BotoConfig(
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        },
    }
else:
    ARTIFACT_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT, "base_url": None},
    }
STORAGES = {
    "default": ARTIFACT_STORAGE,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Uploads: Django spools anything larger than this to a temporary file, never to memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# Spooled uploads live in the data dir, not the system's /tmp: a worker killed mid-upload leaves
# its partial file here, where sweep_orphans removes it, and storing a finished one on local
# storage is a rename on the same file system.
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "tmp")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(exist_ok=True)
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("REGISTRY_MAX_FILES_PER_UPLOAD", 1000, minimum=1)
REGISTRY_MAX_UPLOAD_BYTES = env_int("REGISTRY_MAX_UPLOAD_BYTES", 5 * 1024**3, minimum=1)
# Storage quotas in bytes (0: unlimited): what one account's uploads may add up to, and one
# model's files; staged MLflow uploads count (models_app/quotas.py, docs/deploy.md).
REGISTRY_QUOTA_USER_BYTES = env_int("REGISTRY_QUOTA_USER_BYTES", 0)
REGISTRY_QUOTA_MODEL_BYTES = env_int("REGISTRY_QUOTA_MODEL_BYTES", 0)
# How long a worker keeps an MLflow read answer of an unchanged model (mlflow_compat/cache.py).
REGISTRY_MLFLOW_CACHE_SECONDS = env_int("REGISTRY_MLFLOW_CACHE_SECONDS", 30)
# The fault suite's kill points (core/faults.py): a test-only switch, refused in production.
REGISTRY_FAULT_HOOKS = env_bool("REGISTRY_FAULT_HOOKS")
if REGISTRY_FAULT_HOOKS and not DEV_MODE:
    raise ImproperlyConfigured("REGISTRY_FAULT_HOOKS: only allowed together with REGISTRY_DEV=1")


def _source_prefixes(name: str) -> list[str]:
    """Object-store locations a version may name as its external source, each a scheme, a
    bucket and optionally a folder (``s3://models-bucket/team-a/``): the scheme lower-cased, a
    trailing slash added so that ``s3://bucket`` does not also allow ``s3://bucket-evil``."""
    prefixes = []
    for raw in env_list(name):
        scheme, sep, rest = raw.partition("://")
        if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", scheme) or not rest.strip("/"):
            raise ImproperlyConfigured(
                f"{name}: {raw!r} is not a location such as s3://bucket/ or gs://bucket/folder/"
            )
        prefixes.append(f"{scheme.lower()}://{rest.rstrip('/')}/")
    return prefixes


# Empty by default: external sources are refused until an administrator lists where from.
REGISTRY_EXTERNAL_SOURCES = _source_prefixes("REGISTRY_EXTERNAL_SOURCES")

# Email: console in development, SMTP (configured by EMAIL_* variables) in production.
EMAIL_BACKEND_NAME = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEV_MODE
    else "django.core.mail.backends.smtp.EmailBackend",
)
MAILERS = {"default": {"BACKEND": EMAIL_BACKEND_NAME, "OPTIONS": {}}}
if EMAIL_BACKEND_NAME.endswith("smtp.EmailBackend"):
    MAILERS["default"]["OPTIONS"] = {
        "host": os.environ.get("EMAIL_HOST", "localhost"),
        "port": env_int("EMAIL_PORT", 25),
        "username": os.environ.get("EMAIL_HOST_USER", ""),
        "password": env_str("EMAIL_HOST_PASSWORD"),
        "use_tls": env_bool("EMAIL_USE_TLS"),
        "timeout": 10,
    }
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "registry@localhost")

# Security headers. CSP is strict: scripts only from our origin with a per-request nonce.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
if not DEV_MODE:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    # HSTS preload (security.W021) is left off on purpose: preloading is a decision for the
    # operator of the domain, not for the application. See README, "Production".
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if env_bool("BEHIND_TLS_PROXY", True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # /healthz is probed over plain HTTP by load balancers inside the cluster.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}, "axes.apps": {"level": "WARNING"}},
}


# --- Webhooks (approvals/webhooks, docs/webhooks.md) -----------------------------------------
# Hosts, IP addresses or networks (CIDR) that webhooks may reach although they are loopback or
# private (on-prem receivers; the tests' local receiver). Everything else must be public.
def _webhook_allowed_hosts() -> list[str]:
    import ipaddress

    entries = env_list("REGISTRY_WEBHOOK_ALLOWED_HOSTS")
    for entry in entries:
        if "/" in entry:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ImproperlyConfigured(
                    f"REGISTRY_WEBHOOK_ALLOWED_HOSTS: {entry!r} is not a network like 10.1.0.0/16"
                ) from None
    return entries


REGISTRY_WEBHOOK_ALLOWED_HOSTS = _webhook_allowed_hosts()
REGISTRY_WEBHOOK_TIMEOUT_SECONDS = env_int("REGISTRY_WEBHOOK_TIMEOUT_SECONDS", 5, minimum=1)
REGISTRY_WEBHOOK_MAX_ATTEMPTS = env_int("REGISTRY_WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
REGISTRY_WEBHOOK_BACKOFF_SECONDS = env_int("REGISTRY_WEBHOOK_BACKOFF_SECONDS", 30, minimum=1)
REGISTRY_WEBHOOK_MAX_RESPONSE_BYTES = env_int(
    "REGISTRY_WEBHOOK_MAX_RESPONSE_BYTES", 64 * 1024, minimum=1024
)
REGISTRY_WEBHOOK_POLL_SECONDS = env_int("REGISTRY_WEBHOOK_POLL_SECONDS", 5, minimum=1)
# The worker sends a batch with this many threads, at most PER_HOST at once to one host, and
# takes at most PER_WEBHOOK deliveries of one subscription per batch (so one backlog cannot
# starve the others).
REGISTRY_WEBHOOK_CONCURRENCY = env_int("REGISTRY_WEBHOOK_CONCURRENCY", 8, minimum=1)
REGISTRY_WEBHOOK_PER_HOST = env_int("REGISTRY_WEBHOOK_PER_HOST", 2, minimum=1)
REGISTRY_WEBHOOK_PER_WEBHOOK = env_int("REGISTRY_WEBHOOK_PER_WEBHOOK", 10, minimum=1)
# Test pings and redeliveries a subscription may be sent per minute (answered 429 beyond).
REGISTRY_WEBHOOK_MANUAL_PER_MINUTE = env_int("REGISTRY_WEBHOOK_MANUAL_PER_MINUTE", 5, minimum=1)
# --- end of webhooks -------------------------------------------------------------------------
