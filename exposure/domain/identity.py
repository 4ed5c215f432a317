"""Identifier normalisation: one rule for customer records and leaked records alike.

Every identifier becomes a *strict key* and, where a provider rule says two spellings reach the
same mailbox (consumer Gmail only), a *variant key*. Keys are compared, never displayed: use
:func:`mask` for anything a person may see. Offending values never reach exception messages.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

import idna
import phonenumbers

from exposure.errors import InvalidIdentifier

__all__ = [
    "IdentifierKind",
    "NormalisedIdentifier",
    "candidates",
    "mask",
    "normalise",
    "normalise_email",
    "normalise_login_id",
    "normalise_phone",
]


class IdentifierKind(StrEnum):
    """What a value identifies a customer by."""

    EMAIL = "email"
    LOGIN_ID = "login_id"
    PHONE = "phone"


@dataclass(frozen=True, slots=True)
class NormalisedIdentifier:
    """A normalised identifier; its keys are plaintext, so ``repr`` hides them."""

    kind: IdentifierKind
    strict: str = field(repr=False)
    variant: str | None = field(default=None, repr=False)


_MAX_EMAIL = 254
_MAX_LOGIN_ID = 128
# Checked before NFKC so a multi-megabyte garbage line costs nothing. NFKC composition can
# shrink text at most about 3:1 (Hangul jamo), so 1024 cannot reject anything valid.
_MAX_RAW = 1024

_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})

# NFKC has already turned U+FF0D into '-' and U+FF70 into U+30FC; the rest it leaves alone.
_HYPHENS = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc", "-"))

# What a phone number may be written with. Anything else (letters, '@', '.', 'ext') is not a
# phone here: it keeps phonenumbers off the hot path and stops it from reading vanity letters
# or extensions that E.164 cannot hold.
_PHONE_CHARS = re.compile(r"[0-9+\-() ]+")


def _prepare(raw: str, kind: IdentifierKind) -> str:
    text = raw.strip()
    if len(text) > _MAX_RAW:
        raise InvalidIdentifier(kind, "too_long")
    if not text.isascii():
        # ASCII is NFKC-invariant; skipping it is the common case on the ingestion path.
        text = unicodedata.normalize("NFKC", text).strip()
    if not text:
        raise InvalidIdentifier(kind, "empty")
    return text


def _is_clean(text: str) -> bool:
    # isprintable() is False for every control, format and separator character except the
    # ASCII space, so together with the space test it rules out all inner whitespace.
    return text.isprintable() and " " not in text


@lru_cache(maxsize=65536)
def _domain_to_ascii(domain: str) -> str | None:
    # Dumps repeat a few thousand domains millions of times, so the IDNA work is cached;
    # failures return None rather than raise because lru_cache does not keep exceptions.
    try:
        ascii_domain = idna.encode(domain, uts46=True, transitional=False).decode("ascii")
    except UnicodeError:  # idna.IDNAError and codec errors on lone surrogates
        return None
    # A trailing root dot names the same domain; a dotless name is no mail domain.
    ascii_domain = ascii_domain.removesuffix(".")
    if "." not in ascii_domain:
        return None
    return ascii_domain


def _email(text: str) -> NormalisedIdentifier:
    kind = IdentifierKind.EMAIL
    local, at, domain = text.lower().rpartition("@")
    if not at:
        raise InvalidIdentifier(kind, "no_at")
    # Quoted local parts holding '@' are legal but unseen in practice; in dumps a second '@'
    # means a broken line. Consecutive or trailing dots are NOT rejected: pre-2009 Japanese
    # carrier addresses have them and they are real mailboxes.
    if not local or "@" in local or not _is_clean(local):
        raise InvalidIdentifier(kind, "bad_local_part")
    # U+3002 is not folded by NFKC; the UTS 46 mapping inside idna reads it as a dot.
    ascii_domain = _domain_to_ascii(domain) if domain else None
    if ascii_domain is None:
        raise InvalidIdentifier(kind, "bad_domain")
    strict = f"{local}@{ascii_domain}"
    if len(strict) > _MAX_EMAIL:
        raise InvalidIdentifier(kind, "too_long")
    variant = None
    if ascii_domain in _GMAIL_DOMAINS:
        # Consumer Gmail ignores dots and '+tag'; Workspace and Outlook do not, so only here.
        gmail_local = local.partition("+")[0].replace(".", "")
        # Present even when equal to the strict key: matching compares variant keys with
        # variant keys, so `taroyamada@gmail.com` must meet `taro.yamada@gmail.com` there.
        if gmail_local:
            variant = f"{gmail_local}@gmail.com"
    return NormalisedIdentifier(kind, strict, variant)


def _login_id(text: str, case_sensitive: bool) -> NormalisedIdentifier:
    kind = IdentifierKind.LOGIN_ID
    if not text.isascii():
        text = text.translate(_HYPHENS)
    if len(text) > _MAX_LOGIN_ID:
        raise InvalidIdentifier(kind, "too_long")
    if not _is_clean(text):
        raise InvalidIdentifier(kind, "bad_login_id")
    # lower(), not casefold(): casefold() merges IDs that brokers' own systems (SQL LOWER,
    # Java toLowerCase) keep apart, e.g. 'ß' and 'ss', and e-mail keys use lower() too.
    return NormalisedIdentifier(kind, text if case_sensitive else text.lower())


def _phone(text: str, region: str) -> NormalisedIdentifier:
    kind = IdentifierKind.PHONE
    if not text.isascii():
        text = text.translate(_HYPHENS)
    if not _PHONE_CHARS.fullmatch(text):
        raise InvalidIdentifier(kind, "not_a_phone")
    try:
        number = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException:
        raise InvalidIdentifier(kind, "not_a_phone") from None
    # is_valid_number, not is_possible_number: "possible" only checks length, so every 10- or
    # 11-digit account number or ID in a dump would become a JP "phone". The cost is that a
    # newly allocated range is refused until phonenumbers is upgraded; that shows up as a
    # visible error when the customer record is loaded, never as a silent miss.
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier(kind, "not_a_phone")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return NormalisedIdentifier(kind, e164)


def normalise_email(raw: str) -> NormalisedIdentifier:
    """Normalise an e-mail address: NFKC, trimmed, lower-cased, IDN domain as punycode.

    Consumer Gmail addresses also get a variant key without dots and ``+tag``.
    Raises :class:`InvalidIdentifier` with reason ``empty``, ``too_long``, ``no_at``,
    ``bad_local_part`` or ``bad_domain``.
    """
    return _email(_prepare(raw, IdentifierKind.EMAIL))


def normalise_login_id(raw: str, *, case_sensitive: bool = False) -> NormalisedIdentifier:
    """Normalise a login ID: NFKC, trimmed, hyphen look-alikes as '-', lower-cased by default.

    Raises :class:`InvalidIdentifier` with reason ``empty``, ``too_long`` or ``bad_login_id``
    (whitespace or control characters inside).
    """
    return _login_id(_prepare(raw, IdentifierKind.LOGIN_ID), case_sensitive)


def normalise_phone(raw: str, *, region: str = "JP") -> NormalisedIdentifier:
    """Normalise a phone number to E.164, reading national numbers as being in ``region``.

    Raises :class:`InvalidIdentifier` with reason ``empty``, ``too_long`` or ``not_a_phone``.
    """
    return _phone(_prepare(raw, IdentifierKind.PHONE), region)


def normalise(
    kind: IdentifierKind,
    raw: str,
    *,
    login_id_case_sensitive: bool = False,
    phone_region: str = "JP",
) -> NormalisedIdentifier:
    """Normalise ``raw`` as an identifier of ``kind``; raises :class:`InvalidIdentifier`."""
    if kind is IdentifierKind.EMAIL:
        return normalise_email(raw)
    if kind is IdentifierKind.LOGIN_ID:
        return normalise_login_id(raw, case_sensitive=login_id_case_sensitive)
    return normalise_phone(raw, region=phone_region)


def candidates(
    raw_login: str,
    *,
    login_id_case_sensitive: bool = False,
    phone_region: str = "JP",
) -> tuple[NormalisedIdentifier, ...]:
    """Every identifier a leaked login field could be; ``()`` when nothing fits. Never raises.

    A value with '@' is tried as an e-mail only. Otherwise it is a login ID and, when it is
    a valid phone number, a phone as well (login ID first).
    """
    try:
        text = _prepare(raw_login, IdentifierKind.LOGIN_ID)
    except InvalidIdentifier:
        return ()
    if "@" in text:
        try:
            return (_email(text),)
        except InvalidIdentifier:
            return ()
    found: list[NormalisedIdentifier] = []
    try:
        found.append(_login_id(text, login_id_case_sensitive))
    except InvalidIdentifier:
        pass
    # Cheap pre-check so IDs with letters never reach phonenumbers.
    if _PHONE_CHARS.fullmatch(text) or not text.isascii():
        try:
            found.append(_phone(text, phone_region))
        except InvalidIdentifier:
            pass
    return tuple(found)


def mask(identifier: NormalisedIdentifier) -> str:
    """A display hint that is safe to store and show; it never reveals a whole identifier.

    e-mail ``ta***@example.jp``; login ID ``ab***yz`` (``***`` when shorter than 8);
    phone ``+81*******78``. The number of stars is fixed so the hint does not leak length.
    """
    value = identifier.strict
    if identifier.kind is IdentifierKind.EMAIL:
        local, _, domain = value.rpartition("@")
        # At most len-1 characters, so a one- or two-character local part is never shown whole.
        shown = local[: min(2, len(local) - 1)]
        return f"{shown}***@{domain}"
    if identifier.kind is IdentifierKind.LOGIN_ID:
        # From 8 characters on, at least half of the ID stays hidden.
        return f"{value[:2]}***{value[-2:]}" if len(value) >= 8 else "***"
    try:
        country = phonenumbers.parse(value, None).country_code
    except phonenumbers.NumberParseException:
        return "***"
    return f"+{country}*******{value[-2:]}"
