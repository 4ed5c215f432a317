"""Does a value look like a password hash? Used on leaked values, which are never verified as
passwords when they are themselves hashes, and by :mod:`.schemes` to name what it refuses.

Nothing here logs or raises with the value in it.

Bare hex of a digest length (32/40/56/64/96/128), single-case, with a digit and a letter, counts
as a hash: a real password of that shape is then ``absent``, a missed reset we accept so that a
dumped MD5 is never called "not the current password". Not detected: 16-hex MySQL 3.23 and
13-character DES crypt, short enough to be passwords.
"""

from __future__ import annotations

import base64
import binascii
import re
from enum import Enum

_HEX_DIGEST_LENGTHS = frozenset({32, 40, 56, 64, 96, 128})  # MD5/NTLM, SHA-1, SHA-2 family
_HEX = re.compile(r"[0-9a-f]+|[0-9A-F]+")  # digest encoders never mix case
_C64 = r"[./0-9A-Za-z]"  # crypt(3) alphabet
_B64 = r"[A-Za-z0-9+/]"
_AB64 = r"[./+A-Za-z0-9]"  # passlib's adapted base64 ('.' for '+'), and plain base64
_HASH_PATTERNS = re.compile(
    "|".join(
        (
            r"\*[0-9A-Fa-f]{40}",  # MySQL 4.1+ PASSWORD()
            rf"\$2[abxy]?\$\d\d\${_C64}{{53}}",  # bcrypt
            rf"\$argon2(?:id|i|d)\$(?:v=\d+\$)?m=\d+,t=\d+,p=\d+\${_B64}+\${_B64}+",  # argon2 PHC
            rf"\$1\${_C64}{{0,8}}\${_C64}{{22}}",  # md5crypt
            rf"\$apr1\${_C64}{{0,8}}\${_C64}{{22}}",  # Apache md5crypt
            rf"\$5\$(?:rounds=\d+\$)?{_C64}{{0,16}}\${_C64}{{43}}",  # sha256crypt
            rf"\$6\$(?:rounds=\d+\$)?{_C64}{{0,16}}\${_C64}{{86}}",  # sha512crypt
            rf"\$g?y\$[./A-Za-z0-9]+\${_C64}+\${_C64}{{43}}",  # yescrypt
            rf"\$[PH]\${_C64}{{31}}",  # phpass (WordPress, phpBB)
            rf"\$S\${_C64}{{52}}",  # Drupal 7
            r"pbkdf2_sha(?:1|256)\$\d+\$[^$]+\$[A-Za-z0-9+/=]+",  # Django PBKDF2
            r"(?:bcrypt_sha256|bcrypt)\$\$2[abxy]?\$.+",  # Django bcrypt wrappers
            r"argon2\$argon2(?:id|i|d)\$.+",  # Django argon2 wrapper
            r"scrypt\$\d+\$[^$]+\$\d+\$\d+\$[A-Za-z0-9+/=]+",  # Django scrypt
            r"(?:sha1|md5)\$[^$]*\$[0-9a-f]{32,40}",  # Django legacy salted digests
            rf"\$pbkdf2(?:-sha(?:256|512))?\$\d+\${_AB64}+\${_AB64}+",  # passlib PBKDF2
            rf"\$scrypt\$ln=\d+,r=\d+,p=\d+\${_AB64}+\${_AB64}+",  # passlib scrypt
            r"(?:pbkdf2:sha\d+(?::\d+)?|scrypt:\d+:\d+:\d+)\$[^$]+\$[0-9a-f]{32,}",  # Werkzeug
        )
    )
)
# LDAP RFC 2307 schemes: {SCHEME}base64(digest), {SSCHEME}base64(digest + salt).
_LDAP = re.compile(r"\{([A-Za-z0-9]+)\}([A-Za-z0-9+/]+=*)")
_LDAP_DIGEST_BYTES = {"MD5": 16, "SHA": 20, "SHA256": 32, "SHA384": 48, "SHA512": 64}


def looks_like_hash(value: str) -> bool:
    """True if ``value`` is itself a password hash and must never be verified as a password.

    Hex digests (MD5/NTLM, SHA-1, SHA-2; see the module docstring), MySQL 4.1, bcrypt, argon2,
    crypt ``$1$ $apr1$ $5$ $6$ $y$``, phpass, Drupal 7, LDAP ``{SHA}``/``{SSHA}``/... and
    ``{CRYPT}``, Django/passlib/Werkzeug formats. Surrounding whitespace is ignored here only.
    """
    text = value.strip()
    if not text or not text.isascii():
        return False
    if len(text) in _HEX_DIGEST_LENGTHS and _HEX.fullmatch(text):
        has_digit = any(c.isdigit() for c in text)
        return has_digit and not text.isdigit()
    if _HASH_PATTERNS.fullmatch(text):
        return True
    ldap = _LDAP.fullmatch(text)
    if ldap:
        return _is_ldap_hash(ldap.group(1).upper(), ldap.group(2))
    if text[:7].upper() == "{CRYPT}":
        return looks_like_hash(text[7:])
    return False


def _is_ldap_hash(scheme: str, payload: str) -> bool:
    salted = scheme not in _LDAP_DIGEST_BYTES and scheme.startswith("S")
    size = _LDAP_DIGEST_BYTES.get(scheme[1:] if salted else scheme)
    if size is None:
        return False
    try:
        raw = base64.b64decode(payload, validate=True)
    except binascii.Error:
        return False
    return len(raw) > size if salted else len(raw) == size


class FastHash(Enum):
    """A hash an attacker with a stolen database cracks at GPU speed."""

    UNSALTED = "unsalted"  # hex MD5/NTLM/SHA-1/SHA-2, MySQL 4.1, LDAP {MD5} {SHA} ...
    SALTED = "salted"  # one fast round with a salt, or a few thousand MD5s: {SSHA}, $1$, phpass


_SALTED_FAST = re.compile(
    "|".join(
        (
            rf"\$1\${_C64}{{0,8}}\${_C64}{{22}}",  # md5crypt: 1,000 MD5s
            rf"\$apr1\${_C64}{{0,8}}\${_C64}{{22}}",  # Apache md5crypt
            rf"\$[PH]\${_C64}{{31}}",  # phpass: iterated MD5
            r"(?:sha1|md5)\$[^$]*\$[0-9a-f]{32,40}",  # Django's legacy salted digests
        )
    )
)


def fast_hash(value: str) -> FastHash | None:
    """Whether ``value`` is a fast (crackable) hash, salted or not; None when it is not one."""
    text = value.strip()
    if not text.isascii():
        return None
    if text[:7].upper() == "{CRYPT}":
        return fast_hash(text[7:])
    if len(text) in _HEX_DIGEST_LENGTHS and _HEX.fullmatch(text):
        return FastHash.UNSALTED if looks_like_hash(text) else None
    if re.fullmatch(r"\*[0-9A-Fa-f]{40}", text):
        return FastHash.UNSALTED
    if _SALTED_FAST.fullmatch(text):
        return FastHash.SALTED
    ldap = _LDAP.fullmatch(text)
    if ldap and _is_ldap_hash(ldap.group(1).upper(), ldap.group(2)):
        return FastHash.UNSALTED if ldap.group(1).upper() in _LDAP_DIGEST_BYTES else FastHash.SALTED
    return None
