"""The SSRF guard: a webhook may only reach public addresses.

The target host is resolved once per attempt; every address it resolves to must be public
(not loopback, private, link-local such as the 169.254.169.254 metadata service, multicast,
reserved, unspecified, IPv6 site-local ``fec0::/10`` or otherwise non-global), unless the
host, the address or a network containing it is listed in ``REGISTRY_WEBHOOK_ALLOWED_HOSTS``.
The sender then connects to an address that was checked, never resolving the name a second
time (no DNS rebinding window). Resolving counts against the attempt's deadline: a resolver
that does not answer costs one timeout, like a receiver that does not answer.

A refusal names the kind of address only when the user typed the address: for a host name it
says "not a public address" and never the answer, which would map the internal network for
anyone who may create a webhook (the message reaches forms, the API and the delivery log).
"""

import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

MAX_URL_LENGTH = 2000
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTarget(Exception):
    """The URL may not be called: bad form, unresolvable, or a non-public address."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as in the URL, without brackets: sent as Host header and TLS SNI
    port: int
    path: str  # path and query
    addresses: tuple[str, ...]  # checked addresses, in the resolver's order


def parse_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path+query) of an http(s) URL, or ValidationError with the reason."""
    url = (url or "").strip()
    if not url:
        raise ValidationError("Give the URL of the receiver, like https://deploy.example.com/hook.")
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f"{scheme}://" if scheme else "no scheme"
        raise ValidationError(f"Use an http:// or https:// URL (got {shown}).")
    if parts.username is not None or parts.password is not None:
        raise ValidationError(
            "Leave credentials out of the URL: receivers check the signature instead."
        )
    try:
        URLValidator(schemes=["http", "https"])(url)
        port = parts.port
    except (ValidationError, ValueError):
        raise ValidationError(
            "Enter a valid URL, like https://deploy.example.com/hooks/registry."
        ) from None
    if not parts.hostname:
        raise ValidationError("The URL has no host.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80), path


def _allowed_entries() -> tuple[set[str], list]:
    names, networks = set(), []
    for entry in settings.REGISTRY_WEBHOOK_ALLOWED_HOSTS:
        entry = entry.strip().lower().strip("[]")
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.rstrip("."))
    return names, networks


def _refusal(ip: IPAddress) -> str | None:
    """Why this address may not be reached, or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (where cloud metadata services live)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved:
        return "a reserved address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local address"
    if not ip.is_global:
        return "not a public address"
    return None


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _getaddrinfo(host: str, port: int) -> list:
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise UnsafeTarget(f"{host} does not resolve ({e}).") from None


def _getaddrinfo_within(host: str, port: int, timeout: float) -> list:
    """getaddrinfo has no timeout of its own: ask in a helper thread and stop waiting for it
    at the deadline (the thread ends when the resolver gives up; nobody uses its answer)."""
    answer: list = []

    def ask() -> None:
        try:
            answer.append(_getaddrinfo(host, port))
        except UnsafeTarget as e:
            answer.append(e)

    thread = threading.Thread(target=ask, name="webhook-resolve", daemon=True)
    thread.start()
    thread.join(max(timeout, 0))
    if not answer:
        raise TimeoutError(f"resolving {host} did not finish within the time left")
    if isinstance(answer[0], UnsafeTarget):
        raise answer[0]
    return answer[0]


def resolve(host: str, port: int, *, timeout: float | None = None) -> tuple[str, ...]:
    """Every address of the host, once (no second lookup later). With ``timeout``, raise
    TimeoutError when the resolver has not answered in time."""
    if timeout is None:
        infos = _getaddrinfo(host, port)
    else:
        infos = _getaddrinfo_within(host, port, timeout)
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        if sockaddr[0] not in addresses:
            addresses.append(sockaddr[0])
    if not addresses:
        raise UnsafeTarget(f"{host} does not resolve.")
    return tuple(addresses)


def check(url: str, *, deadline: float | None = None) -> Target:
    """Resolve the URL's host once and check every address; raise UnsafeTarget when refused.
    ``deadline`` (``time.monotonic()``): raise TimeoutError when resolving is not done by then."""
    try:
        scheme, host, port, path = parse_url(url)
    except ValidationError as e:
        raise UnsafeTarget(e.messages[0]) from None
    timeout = None if deadline is None else deadline - time.monotonic()
    addresses = resolve(host, port, timeout=timeout)
    names, networks = _allowed_entries()
    if host.lower().rstrip(".") in names:
        return Target(scheme, host, port, path, addresses)
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if any(ip in network for network in networks):
            continue
        why = _refusal(ip)
        if why is not None:
            if not _is_literal(host):
                why = "not a public address"
            raise UnsafeTarget(
                f"{host} is {why}; webhooks may only reach public addresses "
                "(an administrator can allow a host in REGISTRY_WEBHOOK_ALLOWED_HOSTS)."
            )
    return Target(scheme, host, port, path, addresses)
