"""Outbound HTTP for tasks that call URLs given to them (webhooks, fetching pages).

A URL from a request can point anywhere, including the machine's own services and
the cloud metadata endpoint (SSRF). Destinations that resolve to private, loopback,
link-local or reserved addresses are refused unless OUTBOUND_ALLOW_PRIVATE says
otherwise; by default they are refused in production (APP_ENV=production) and
allowed elsewhere, so local development and the tests can use 127.0.0.1. Redirects
are followed only within the same host, each hop checked again.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import requests

from jobs.settings import get_settings

MAX_REDIRECTS = 3


class BlockedDestinationError(ValueError):
    """The URL may not be called from here."""


def private_allowed() -> bool:
    return get_settings().private_destinations_allowed


def check_url(url: str) -> None:
    """Raise ``BlockedDestinationError`` unless ``url`` is http(s) to an allowed address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedDestinationError(f"only http and https URLs with a host are allowed, not {url!r}")
    if private_allowed():
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except socket.gaierror as error:
        raise BlockedDestinationError(f"cannot resolve {parts.hostname!r}: {error}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not is_public(address):
            raise BlockedDestinationError(
                f"{parts.hostname} resolves to {address}, a private or reserved address (set OUTBOUND_ALLOW_PRIVATE)"
            )


# IPv6 ranges that carry an IPv4 address inside; Python 3.11 calls NAT64 and 6to4 global, but
# through a gateway they reach whatever IPv4 address they embed (192.168.1.1, 127.0.0.1).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_6TO4 = ipaddress.ip_network("2002::/16")


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A global address, and if it embeds an IPv4 address (IPv4-mapped, NAT64, 6to4), that one too."""
    if not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is None and address in _6TO4:
            embedded = ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)
        if embedded is not None:
            return embedded.is_global
    return True


def request(session: requests.Session, method: str, url: str, **kwargs: object) -> requests.Response:
    """Send a request, following redirects only to the same host, every hop checked."""
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url)
        response = session.request(method, url, allow_redirects=False, **kwargs)  # type: ignore[arg-type]
        location = response.headers.get("Location")
        if not response.is_redirect or not location:
            return response
        target = urljoin(url, location)
        if urlsplit(target).netloc != urlsplit(url).netloc:
            response.close()
            raise BlockedDestinationError(f"refusing a redirect from {urlsplit(url).netloc} to another host: {target}")
        response.close()
        url = target
        if response.status_code == 303:
            method, kwargs = "GET", {key: value for key, value in kwargs.items() if key not in ("data", "json")}
    raise BlockedDestinationError(f"more than {MAX_REDIRECTS} redirects")
