"""sha256_crypt / sha512_crypt (``$5$`` / ``$6$``) verification through the system's libxcrypt.

libxcrypt is the library behind ``/etc/shadow`` on every current Linux distribution (glibc
dropped its own libcrypt in 2.38), and the reference for these schemes. ``crypt_rn`` is its
reentrant entry point: each call gets its own scratch area, and ctypes releases the GIL for the
call, so verifications run on every core. Where libcrypt is missing or cannot compute these
schemes (``self-test`` against the specification's test vectors fails: macOS, a musl build
without them), libpass's pure-Python implementation verifies instead: the same answers, about
three times slower, and on one core at a time since it holds the GIL.

Nothing here logs, stores or raises with a password in it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hmac
from collections.abc import Callable

from passlib.hash import sha256_crypt, sha512_crypt

# sizeof(struct crypt_data) in libxcrypt: crypt_rn refuses a smaller scratch area.
_CRYPT_DATA_SIZE = 32768
# Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512", test vectors 1 (rounds implicit).
_VECTORS = (
    (b"Hello world!", b"$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"),
    (
        b"Hello world!",
        b"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBF"
        b"dcbYEdFCoEOfaS35inz1",
    ),
)

CryptFunction = Callable[[bytes, bytes], bytes | None]


def _load_libcrypt() -> CryptFunction | None:
    """``crypt_rn(phrase, setting)`` from libxcrypt, or None where it cannot be had."""
    name = ctypes.util.find_library("crypt") or "libcrypt.so.1"
    try:
        library = ctypes.CDLL(name)
        crypt_rn = library.crypt_rn
    except (OSError, AttributeError):
        return None
    crypt_rn.restype = ctypes.c_char_p
    crypt_rn.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int)

    def compute(phrase: bytes, setting: bytes) -> bytes | None:
        scratch = ctypes.create_string_buffer(_CRYPT_DATA_SIZE)  # zeroed, per call
        result: bytes | None = crypt_rn(phrase, setting, scratch, _CRYPT_DATA_SIZE)
        return result

    return compute


@functools.cache
def libcrypt() -> CryptFunction | None:
    """libxcrypt's ``crypt_rn`` if it computes the specification's test vectors, else None."""
    compute = _load_libcrypt()
    if compute is None:
        return None
    for phrase, expected in _VECTORS:
        if compute(phrase, expected) != expected:
            return None
    return compute


def backend() -> str:
    """``libxcrypt`` or ``libpass`` (the pure-Python fallback), for the benchmark and logs."""
    return "libxcrypt" if libcrypt() is not None else "libpass"


def verify(hash_text: str, secret: bytes, *, use_libcrypt: bool = True) -> bool:
    """Whether ``secret`` is the password behind a ``$5$`` / ``$6$`` hash.

    A password with a NUL byte cannot be one: C ``crypt`` would see only the part before it,
    and libpass refuses it. ``use_libcrypt=False`` forces the fallback (tests compare both).
    """
    if b"\x00" in secret:
        return False
    compute = libcrypt() if use_libcrypt else None
    if compute is not None:
        expected = hash_text.encode("ascii")
        result = compute(secret, expected)
        return result is not None and hmac.compare_digest(result, expected)
    handler = sha256_crypt if hash_text.startswith("$5$") else sha512_crypt
    return bool(handler.verify(secret, hash_text))
