"""Signing and sending one delivery: stdlib HTTP, pinned to a checked address, no redirects.

The signature is HMAC-SHA256 with the subscription's secret over ``f"{timestamp}.{body}"``,
sent as ``X-Registry-Signature: sha256=<hex>`` next to ``X-Registry-Timestamp`` (Unix seconds),
so a receiver can refuse stale or replayed requests. See docs/webhooks.md.
"""

import contextlib
import hashlib
import hmac
import http.client
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from approvals.webhooks.guard import Target

USER_AGENT = "model-registry-webhooks/1"


def body_of(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def headers_for(*, secret: str, event: str, delivery_id: str, body: bytes, timestamp: int):
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Registry-Event": event,
        "X-Registry-Delivery": delivery_id,
        "X-Registry-Timestamp": str(timestamp),
        "X-Registry-Signature": sign(secret, timestamp, body),
        "Connection": "close",
    }


class _Deadline:
    """The time left of one attempt's budget; every step (connect, TLS, send, read, each
    address tried) takes what is left, so the whole attempt ends by the deadline.

    Socket timeouts bound each read or write, not their sum: a receiver trickling a byte now
    and then would never trip them. So each connected socket is also watched, and shut down
    at the deadline."""

    def __init__(self, deadline: float, budget: float):
        self.at, self.budget = deadline, budget
        self.cut = False
        self._timers: list[threading.Timer] = []

    def left(self) -> float:
        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise self.expired()
        return remaining

    def expired(self) -> TimeoutError:
        return TimeoutError(f"the receiver took longer than {self.budget:g} s")

    def watch(self, sock: socket.socket) -> None:
        timer = threading.Timer(max(self.at - time.monotonic(), 0), self._cut, args=(sock,))
        timer.daemon = True
        timer.start()
        self._timers.append(timer)

    def _cut(self, sock: socket.socket) -> None:
        self.cut = True
        with contextlib.suppress(OSError):  # already closed
            sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked read or write

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address; the Host header still names the URL's host."""

    def __init__(self, host: str, port: int, *, address: str, deadline: _Deadline):
        super().__init__(host, port, timeout=deadline.left())
        self._address, self._deadline = address, deadline

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self._deadline.left())
        self._deadline.watch(self.sock)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to the checked address; TLS SNI and certificate checks use the URL's host."""

    def __init__(self, host: str, port: int, *, address: str, deadline: _Deadline):
        super().__init__(host, port, timeout=deadline.left(), context=ssl.create_default_context())
        self._address, self._deadline = address, deadline

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self._deadline.left())
        try:
            sock.settimeout(self._deadline.left())  # the TLS handshake gets what is left
            tls = self._context.wrap_socket(
                sock, server_hostname=self.host, do_handshake_on_connect=False
            )
        except BaseException:
            sock.close()
            raise
        self._deadline.watch(tls)  # the TLS socket owns the connection now
        try:
            tls.do_handshake()
        except BaseException:
            tls.close()
            raise
        self.sock = tls


@dataclass
class Response:
    status: int
    location: str
    body: bytes  # at most max_bytes
    truncated: bool  # the receiver had more to say than max_bytes


def post(
    target: Target,
    body: bytes,
    headers: dict,
    *,
    timeout: float,
    max_bytes: int,
    deadline: float | None = None,
) -> Response:
    """POST once. Redirects are returned, not followed; the body read stops at ``max_bytes``.
    The whole exchange, over every address tried, must finish within ``timeout`` seconds (or by
    ``deadline``, a ``time.monotonic()`` value, when the caller already spent part of the
    budget). Raises OSError (TimeoutError at the deadline) or HTTPException."""
    clock = _Deadline(time.monotonic() + timeout if deadline is None else deadline, timeout)
    try:
        response = _post(clock, target, body, headers, max_bytes)
    except (OSError, http.client.HTTPException) as e:
        if clock.cut:  # what failed is the watchdog closing the socket at the deadline
            raise clock.expired() from e
        raise
    finally:
        clock.stop()
    if clock.cut:  # the body was cut short at the deadline: not an answer
        raise clock.expired()
    return response


def _post(clock: _Deadline, target: Target, body: bytes, headers: dict, max_bytes: int):
    last_error: OSError | None = None
    for address in target.addresses:
        clock.left()  # no time left: stop here rather than try the next address
        kind = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
        conn = kind(target.host, target.port, address=address, deadline=clock)
        try:
            try:
                conn.connect()
            except OSError as e:  # try the next checked address
                last_error = e
                continue
            sock = conn.sock  # the response keeps reading from it after conn lets go
            sock.settimeout(clock.left())
            conn.request("POST", target.path, body=body, headers=headers)
            sock.settimeout(clock.left())
            response = conn.getresponse()
            chunks, size = [], 0
            while size < max_bytes and not response.isclosed():  # closed: body fully read
                sock.settimeout(clock.left())
                chunk = response.read(min(16384, max_bytes - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            truncated = not response.isclosed() and bool(response.read(1))
            return Response(
                status=response.status,
                location=response.getheader("Location", ""),
                body=b"".join(chunks),
                truncated=truncated,
            )
        finally:
            conn.close()
    if isinstance(last_error, TimeoutError):
        clock.left()  # the budget is spent: say so in the same words
    raise last_error or OSError("no address to connect to")
