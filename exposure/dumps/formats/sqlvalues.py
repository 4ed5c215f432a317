"""Lexing SQL literals: the tuples of an ``INSERT ... VALUES``, fed one line at a time, and
the fields of a PostgreSQL ``COPY`` text row.

String literals may span lines and use either escape style: MySQL's backslash escapes
(``\\'``, ``\\n``, ``\\\\``) and the standard doubled quote (``''``). Backslashes are escapes
unless the dump said ``SET standard_conforming_strings = on`` (PostgreSQL), where only ``E'...'``
strings use them. ``NULL`` gives ``None``; numbers and other bare expressions give their text;
introducers (``_utf8mb4'...'``, ``_binary'...'``, ``N'...'``) are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_ESCAPES = {
    "0": "\0",
    "b": "\b",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "Z": "\x1a",
    "%": "\\%",
    "_": "\\_",
}
_BACKSLASH_ESCAPE = {q: re.compile(rf"\\(.)|{q}{q}", re.DOTALL) for q in "'\""}
_BODY_BACKSLASH = {q: re.compile(rf"(?:[^{q}\\]|\\.|{q}{q})*", re.DOTALL) for q in "'\""}
_BODY_STANDARD = {q: re.compile(rf"(?:[^{q}]|{q}{q})*") for q in "'\""}
_PLAIN = re.compile(r"[^'\"(),]+")
_BETWEEN = re.compile(r"[\s,]*")

_COPY_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.DOTALL)
_COPY_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _end(pattern: re.Pattern[str], line: str, pos: int) -> int:
    """End of ``pattern`` matched at ``pos`` (the patterns used here also match empty text)."""
    m = pattern.match(line, pos)
    return pos if m is None else m.end()


def _unescape_backslash(raw: str, quote: str) -> str:
    def replace(m: re.Match[str]) -> str:
        c = m.group(1)
        if c is None:
            return m.group()[0]  # a doubled quote
        return _ESCAPES.get(c, c)

    return _BACKSLASH_ESCAPE[quote].sub(replace, raw)


def copy_field(field: str) -> str | None:
    """Value of one field of a PostgreSQL COPY text row (``\\N`` is NULL)."""
    if field == "\\N":
        return None
    if "\\" not in field:
        return field

    def replace(m: re.Match[str]) -> str:
        octal, hexa, other = m.groups()
        if octal is not None:
            return chr(int(octal, 8))
        if hexa is not None:
            return chr(int(hexa, 16))
        return _COPY_SIMPLE.get(other, other)

    return _COPY_ESCAPE.sub(replace, field)


class ValuesLexer:
    """Streams the tuples of ``VALUES (...), (...);`` across as many lines as they take.

    :meth:`feed` yields ``(tuple start line, values)`` for every tuple completed on the line;
    afterwards :attr:`ended` tells whether the statement's ``;`` was seen (with :attr:`rest`
    holding the text after it) and :attr:`error` whether the text was not a VALUES list.
    """

    def __init__(self, backslash_escapes: bool) -> None:
        self.backslash_escapes = backslash_escapes
        self.ended = False
        self.error = False
        self.rest = ""
        self.tuple_line = 0
        self._depth = 0
        self._values: list[str | None] = []
        self._token: list[str] = []
        self._string: list[str] | None = None  # raw chunks of an open string literal
        self._quote = "'"
        self._string_backslash = True
        self._value_string: str | None = None

    @property
    def in_tuple(self) -> bool:
        return self._depth > 0 or self._string is not None

    def feed(self, line_no: int, line: str, pos: int = 0) -> Iterator[tuple[int, list[str | None]]]:
        if self._string is not None:
            self._string.append("\n")  # the line break was inside the literal
        i, n = pos, len(line)
        while i < n:
            if self._string is not None:
                i = self._scan_string(line, i)
            elif self._depth == 0:
                i = _end(_BETWEEN, line, i)
                if i >= n or line.startswith(("--", "#"), i):
                    return
                c = line[i]
                if c == "(":
                    self._depth, self.tuple_line = 1, line_no
                    self._values, self._token, self._value_string = [], [], None
                elif c == ";":
                    self.ended, self.rest = True, line[i + 1 :]
                    return
                else:
                    self.error = True
                    return
                i += 1
            else:
                plain = _PLAIN.match(line, i)
                if plain is not None:
                    self._token.append(plain.group())
                    i = plain.end()
                    continue
                c = line[i]
                i += 1
                if c in "'\"":
                    self._open_string(c)
                elif c == "(":
                    self._depth += 1
                    self._token.append(c)
                elif self._depth > 1:  # inside a function call such as UNHEX('..')
                    self._token.append(c)
                    if c == ")":
                        self._depth -= 1
                elif c == ",":
                    self._end_value()
                else:  # ")" closes the tuple
                    self._end_value()
                    self._depth = 0
                    yield self.tuple_line, self._values

    def _open_string(self, quote: str) -> None:
        introducer = "".join(self._token).strip()
        self._string_backslash = self.backslash_escapes or introducer.upper() == "E"
        if self._depth == 1:
            self._token = []  # drop _utf8mb4 / _binary / N / E
        else:
            self._token.append(quote)
        self._quote, self._string = quote, []

    def _scan_string(self, line: str, i: int) -> int:
        q = self._quote
        body = (_BODY_BACKSLASH if self._string_backslash else _BODY_STANDARD)[q]
        j = _end(body, line, i)
        chunks = self._string if self._string is not None else []
        if j < len(line) and line[j] == q:
            chunks.append(line[i:j])
            raw = "".join(chunks)
            self._string = None
            if self._depth > 1:  # literal inside a function call: keep its source text
                self._token.extend((raw, q))
                return j + 1
            if self._string_backslash:
                value = _unescape_backslash(raw, q)
            else:
                value = raw.replace(q + q, q)
            self._value_string = (self._value_string or "") + value
            return j + 1
        chunks.append(line[i:])
        self._string = chunks
        return len(line)

    def _end_value(self) -> None:
        if self._value_string is not None:
            self._values.append(self._value_string)
        else:
            text = "".join(self._token).strip()
            self._values.append(None if not text or text.upper() == "NULL" else text)
        self._token, self._value_string = [], None
