"""Site names: the host a credential or cookie was captured for, in one canonical form.

Canonical form: lower-case; IDN labels as punycode (IDNA 2008 with UTS 46 mapping, the same
rule identity normalisation uses for e-mail domains, so ``。`` reads as a dot and full-width
letters fold); no port, no trailing dot; IPv6 literals without brackets, in their compressed
form. Anything that cannot be a host gives ``None``.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from urllib.parse import urlsplit

import idna

_ASCII_HOST = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
# A host written without a scheme must look like a DNS name with a TLD, or be an IP literal:
# otherwise ``taro.yamada`` or ``Chrome`` would become "sites".
_DOMAIN_LIKE = re.compile(
    r"(?:[a-z0-9_](?:[a-z0-9_-]*[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})", re.IGNORECASE
)


@lru_cache(maxsize=65536)
def normalise_host(host: str) -> str | None:
    """Canonical site for a bare host (``Trade.Sec.Example``, ``[2001:DB8::1]``, ``例え.jp``).

    Cached: dumps repeat the same few thousand hosts millions of times.
    """
    h = host.strip()
    if h.startswith("["):
        return _ipv6(h[1:-1]) if h.endswith("]") else None
    if ":" in h:
        return _ipv6(h)
    h = h.rstrip(".")
    if not h:
        return None
    if h.isascii():
        h = h.lower()
        return h if _ASCII_HOST.fullmatch(h) else None
    try:
        encoded = idna.encode(h, uts46=True).decode("ascii").rstrip(".")
    except UnicodeError:  # idna.IDNAError is a UnicodeError
        return None
    return encoded or None


def looks_like_host(field: str) -> bool:
    """True when a scheme-less field is plausibly a host name (``trade.sec.example``)."""
    if _DOMAIN_LIKE.fullmatch(field) or _IPV4.fullmatch(field):
        return True
    if field.isascii() or "." not in field.replace("。", "."):
        return False
    site = normalise_host(field)
    return site is not None and _DOMAIN_LIKE.fullmatch(site) is not None


def site_from_url(value: str) -> str | None:
    """Canonical site of a URL-ish field value (stealer ``URL:`` field, CSV ``url`` column).

    Accepts full URLs, Android facets (``android://<cert hash>@<package>/``: the site is the
    package name; the hash may contain ``/``, so it is cut at the ``@``) and scheme-less hosts,
    which must look like a domain or an IP literal (``Chrome`` or ``UNKNOWN`` is not a site).
    """
    v = value.strip()
    if not v or any(c.isspace() for c in v):
        return None
    scheme, sep, rest = v.partition("://")
    if not sep:
        host = _authority_host(v)
        return normalise_host(host) if host and looks_like_host(host) else None
    if scheme.lower() == "android" and "@" in rest:
        rest = rest.partition("@")[2]
        return normalise_host(_authority_host(rest))
    try:
        hostname = urlsplit(v).hostname
    except ValueError:  # malformed IPv6 literal or port
        return None
    return normalise_host(hostname) if hostname else None


def _authority_host(text: str) -> str:
    """Host part of ``host[:port][/path]`` (no scheme, no user info)."""
    try:
        hostname = urlsplit("//" + text).hostname
    except ValueError:
        return ""
    return hostname or ""


def _ipv6(text: str) -> str | None:
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError:
        return None
