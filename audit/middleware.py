from audit.chain import current_ip


class AuditContextMiddleware:
    """Makes the client address available to audit.record() for the length of a request.

    REMOTE_ADDR is the peer as the WSGI server saw it; behind a proxy, configure the proxy
    (or gunicorn's --forwarded-allow-ips) so that it is the client's address.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = current_ip.set(request.META.get("REMOTE_ADDR") or None)
        try:
            return self.get_response(request)
        finally:
            current_ip.reset(token)
