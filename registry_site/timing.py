"""``Server-Timing`` on every response, for measuring pages where they are served (off unless
``REGISTRY_SERVER_TIMING=1``; bench/pages.py reads it).

    Server-Timing: total;dur=41.2, db;dur=12.7, queries;desc="9"

``total``: from when the request reached this middleware (the first one) to when its response
was ready; ``db``: time spent in the database's ``execute`` calls (the default connection),
``queries``: how many there were. A streamed response's body is produced after its headers
are sent, so its header counts only what happened before the first byte.
"""

import time

from django.db import connection


class _QueryTimer:
    def __init__(self):
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.count += 1


class ServerTimingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        timer = _QueryTimer()
        with connection.execute_wrapper(timer):
            response = self.get_response(request)
        total = (time.perf_counter() - started) * 1000
        response["Server-Timing"] = (
            f"total;dur={total:.1f}, db;dur={timer.seconds * 1000:.1f}, "
            f'queries;desc="{timer.count}"'
        )
        return response
