"""How the registry is served: ``gunicorn -c gunicorn.conf.py`` from the repository's root.

The one place for the serving command's settings; ``make run``, the production command
(README.md, docs/deploy.md), the benchmarks and the tests that start gunicorn all use it. An
option given on the command line after ``-c gunicorn.conf.py`` overrides the one here.

Environment: ``HOST`` (``127.0.0.1``) and ``PORT`` (``8000``) for the address;
``REGISTRY_DATA_DIR`` (``var/``, as in registry_site/settings.py) for the control socket.
"""

import os
from pathlib import Path

wsgi_app = "registry_site.wsgi"


def _bind() -> str:
    # gunicorn's own default listens on every interface (0.0.0.0) as soon as PORT is set; the
    # registry stays on loopback unless HOST says otherwise, as it expects a proxy in front.
    host = os.environ.get("HOST") or "127.0.0.1"
    port = os.environ.get("PORT") or "8000"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"PORT: expected a port number (1-65535), got {port!r}")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"{host}:{port}"


bind = [_bind()]

# docs/deploy.md: one thread per worker (the work is CPU-bound Python), two workers per two
# cores, and the gthread-based worker that leaves new connections to an idle worker.
workers = 2
threads = 1
worker_class = "registry_site.gunicorn_workers.BalancedThreadWorker"

# With gthread workers the request runs in the worker's thread pool while its main loop keeps
# sending heartbeats, so this is not a limit on a request's duration (a 5 GiB upload may take
# minutes; the proxy in front bounds slow clients). It only restarts a worker whose main loop
# stopped for this long: deadlocked, or stuck in a C call that holds the GIL. gunicorn's 30 s
# is long enough for a worker to load Django on a busy machine (the boot counts) and short
# enough that a stuck worker is replaced within half a minute.
timeout = 30

accesslog = "-"  # stdout
errorlog = "-"  # stderr
# Method, path without its query string, status, size, duration, user agent. The default's
# "%(r)s" is the raw request line, query string included: the registry refuses tokens in
# query strings, but the log would still keep one a client sent. The referrer (a URL with
# its query string) and the Basic-auth user name are left out for the same reason.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'

# gunicorn 27's control socket (for gunicornc) defaults to one path per user
# (~/.gunicorn/gunicorn.ctl): a second instance on the same host would take it over and
# remove it when it stops. One per data dir instead, that is one per instance.
_data_dir = Path(os.environ.get("REGISTRY_DATA_DIR") or Path(__file__).parent / "var").resolve()
control_socket = str(_data_dir / "gunicorn.ctl")
