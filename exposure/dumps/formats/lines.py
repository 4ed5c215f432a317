"""Screening shared by every format: oversize and binary lines, blank lines and noise.

A decoded line is first *screened* (can it be parsed at all?), then, in the line-list formats,
checked for *noise* (comments, HTML, separator rules, seller banners). Both only ever return a
stable reason code; the line's text is never kept in a rejection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from exposure.dumps.records import Rejected

MAX_LINE_BYTES = 64 * 1024
"""Longest line (UTF-8 bytes) a credential format accepts; longer ones are ``too_long``."""

SHORT_LINE = MAX_LINE_BYTES // 4
"""A str this short is under 64 KiB in UTF-8 whatever it holds: no need to measure it.
Mirrored by ``SHORT_LINE`` in ``_fastscan.c`` (a longer line always takes this path)."""

# C0 controls except TAB, DEL, and C1 controls (the latter are what a UTF-8 file read as
# latin-1 turns into): a line holding one is binary or mis-decoded, not text.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
# Lone surrogates come from ``errors="surrogateescape"``: bytes the decoder could not read.
_SURROGATE = re.compile(r"[\ud800-\udfff]")

_HTML = re.compile(r"\s*<(?:!--|!doctype\b|/?[a-z][a-z0-9]*(?:\s[^>]*)?/?>)", re.IGNORECASE)
# A rule line: three or more punctuation / box-drawing characters and nothing else
# (``=====``, ``━━━━━``, ``-- -- --``, ``*****``, ``_____``).
_RULE = re.compile(r"\s*(?:(?:[^\w\s]\s*){3,}|_{3,}\s*)")
# Seller advertising: ``Seller: @x``, ``Free Logs: t.me/x``, ``Telegram: @channel``. Words
# that are also plausible logins (``support``, ``shop``) count only when the value is a handle,
# a link or a channel.
_BANNER_LABEL = re.compile(
    r"\s*(?:(?P<strong>sellers?|(?:free|private|fresh|daily)\s*logs?|join\s+us|"
    r"(?:checked|made|created|uploaded|sponsored)\s+by)|"
    r"telegram|tg|channel|join|contact|buy|shop|owner|author|follow(?:\s+us)?|cloud|support)"
    r"\s*(?:[:：|>\-]|(?=@)|$)",
    re.IGNORECASE,
)
_CHANNEL = re.compile(r"t\.me/|telegram\.(?:me|org)/|discord\.(?:gg|com)/", re.IGNORECASE)
_HANDLE_OR_LINK = re.compile(r"\s*@\w|.*(?:https?://|t\.me/|discord\.gg/)", re.IGNORECASE)

NOISE_FIRST = frozenset("#/<=-*_~+>|[━─═╔╚║• \t\u3000")
"""First characters of the lines :func:`noise` may reject (besides the empty line). Its ASCII
part is mirrored by ``noise_first`` in ``_fastscan.c``."""


def screen(line: str, max_bytes: int = MAX_LINE_BYTES) -> tuple[str, str | None]:
    """Prepare ``line`` for parsing: return ``(line, None)`` or ``(line, reason)``.

    Reasons: ``too_long`` (more than ``max_bytes`` UTF-8 bytes), ``binary`` (NUL or another
    control character other than TAB), ``undecodable`` (lone surrogates). A single trailing
    ``\\r`` (the rest of a CRLF terminator) and a leading BOM are removed: they belong to the
    file's framing, not to the credential.
    """
    if len(line) > max_bytes // 4 and len(line.encode("utf-8", "surrogatepass")) > max_bytes:
        return line, "too_long"
    if line.isprintable():
        return line, None
    if line.endswith("\r"):
        line = line[:-1]
    if line.startswith("\ufeff"):
        line = line[1:]
    if _CONTROL.search(line):
        return line, "binary"
    if _SURROGATE.search(line):
        return line, "undecodable"
    return line, None


def needs_screening(line: str) -> bool:
    """Cheap test: False for the common short printable line that :func:`screen` would pass."""
    return len(line) > SHORT_LINE or not line.isprintable()


def screened(
    lines: Iterable[tuple[int, str]], max_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, str] | Rejected]:
    """The loop head every format reader shares: each ``(line_no, line)`` screened (see
    :func:`screen`), as the prepared pair or as ``Rejected(line_no, reason)``.

    The common short printable line costs one length test and one ``isprintable`` call.
    ``plain_line`` in ``_fastscan.c`` mirrors the test (for ASCII: bytes 0x20 to 0x7e).
    """
    for line_no, line in lines:
        if len(line) > SHORT_LINE or not line.isprintable():
            line, reason = screen(line, max_bytes)
            if reason is not None:
                yield Rejected(line_no, reason)
                continue
        yield line_no, line


def is_rule(line: str) -> bool:
    """True for a separator rule (``=====``, ``━━━━━``, ``-----``)."""
    return _RULE.fullmatch(line) is not None


def noise(line: str) -> str | None:
    """Classify a line that carries no credential: ``blank``, ``comment``, ``html``,
    ``separator`` or ``banner``; ``None`` when it may hold data.

    ``#`` starts a comment only when followed by whitespace, ``#``, ``!`` or nothing: a
    reversed combo line may begin with a password such as ``#Sakura2025``.
    """
    stripped = line.strip()
    if not stripped:
        return "blank"
    head = stripped[:2]
    if head == "//" or stripped == "#" or (head[0] == "#" and head[1] in " \t#!"):
        return "comment"
    if head == "--" and (len(stripped) == 2 or stripped[2] in " \t"):
        return "comment"
    if head[0] == "<" and _HTML.match(stripped):
        return "html"
    if is_rule(stripped):
        return "separator"
    if is_banner(stripped):
        return "banner"
    return None


def is_banner(line: str) -> bool:
    """True for a seller banner (``Seller: @x``, ``Free Logs: https://t.me/x``)."""
    m = _BANNER_LABEL.match(line)
    if m is None:
        return False
    return m.group("strong") is not None or _HANDLE_OR_LINK.match(line, m.end()) is not None


def mentions_channel(line: str) -> bool:
    """True when the line advertises a Telegram / Discord channel."""
    return _CHANNEL.search(line) is not None
