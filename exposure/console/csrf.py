"""Cross-site request forgery protection for the console's forms.

Every form carries a token that is an HMAC, under a key derived from the pepper, of the
secret in the browser's session cookie (or, before sign-in, of a pre-session cookie). Another
site can make a browser post a form, but it cannot read the cookie, so it cannot compute the
token; and since the key is the server's, it cannot pick a cookie and a matching token either
(a cookie planted from a sibling host gets it nowhere). Nothing is stored: the token follows
from the cookie. Unsafe requests must also not come from another origin (``Origin`` and
``Sec-Fetch-Site``, where the browser sends them).
"""

from __future__ import annotations

import base64
import hmac
from urllib.parse import urlsplit

from aiohttp import web

from exposure.settings import Settings

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
_KEY_LABEL = b"exposure/console-csrf/v1"


def key(settings: Settings) -> bytes:
    """The CSRF key: derived from the pepper, so every replica agrees on it."""
    return hmac.digest(settings.pepper.reveal(), _KEY_LABEL, "sha256")


def token_for(csrf_key: bytes, binding: str) -> str:
    """The token forms carry for a cookie secret (``binding``)."""
    digest = hmac.digest(csrf_key, binding.encode(), "sha256")
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def valid(csrf_key: bytes, binding: str | None, presented: str | None) -> bool:
    """Whether ``presented`` is the token for ``binding`` (constant time)."""
    if not binding or not presented:
        return False
    return hmac.compare_digest(token_for(csrf_key, binding).encode(), presented.encode())


def expected_origin(request: web.Request, settings: Settings) -> tuple[str | None, str]:
    """(scheme or None when any will do, host[:port]) that the console is reached at."""
    if settings.console_url is not None:
        parts = urlsplit(settings.console_url)
        return parts.scheme, parts.netloc
    # Behind a TLS proxy that is not configured the scheme seen here is http while the
    # browser's is https: the host is what must match.
    return None, request.host.lower()


def same_origin(request: web.Request, settings: Settings) -> bool:
    """False when the browser says the request comes from another site or origin."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # an older browser; the token still has to match
    if origin == "null":
        return False
    parts = urlsplit(origin)
    scheme, host = expected_origin(request, settings)
    return parts.netloc.lower() == host and (scheme is None or parts.scheme == scheme)


async def presented_token(request: web.Request) -> str | None:
    """The token a form (or a script, by header) sent."""
    header = request.headers.get(HEADER)
    if header:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = (await request.post()).get(FIELD)
        return value if isinstance(value, str) else None
    return None
