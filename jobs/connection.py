"""The Redis URL every process uses, with the TLS option managed services need."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jobs.settings import get_settings


def redis_url(url: str, verify_tls: bool | None = None) -> str:
    """``url``, told not to verify the server certificate when REDIS_TLS_VERIFY=false.

    Managed Redis services (Heroku Data for Redis among them) serve ``rediss://`` with a
    self-signed certificate; verification must then be turned off explicitly. The default
    verifies, as it should.
    """
    if verify_tls is None:
        verify_tls = get_settings().REDIS_TLS_VERIFY
    parts = urlsplit(url)
    if parts.scheme != "rediss" or verify_tls:
        return url
    query = dict(parse_qsl(parts.query))
    query["ssl_cert_reqs"] = "none"
    return urlunsplit(parts._replace(query=urlencode(query)))


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***``: what a page or a report may show."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def text(value: bytes | str) -> str:
    """A value Redis answered, as text: Offload's clients answer bytes (``decode_responses`` off)."""
    return value.decode() if isinstance(value, bytes) else value


def binary(value: bytes | str) -> bytes:
    """A value Redis answered, as bytes."""
    return value if isinstance(value, bytes) else value.encode()
