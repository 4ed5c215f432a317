"""The native fast path must agree with the Python rules it shortcuts.

Lines are generated from an alphabet rich in the characters the rules turn on (delimiters,
'@', dots, spaces, noise first characters, hash markers, hex), plus hand-written traps; every
line is parsed both ways and every fast record is checked against the Python matcher.
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
import re
import string
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exposure.domain import identity
from exposure.domain.fingerprints import identifier_fingerprint
from exposure.dumps import fastpath
from exposure.dumps.decode import TextBlock, scan_lines
from exposure.dumps.fastpath import RecordBlock, iter_blocks
from exposure.dumps.formats import combo, lines
from exposure.dumps.formats.lists import iter_combo, iter_ulp
from exposure.dumps.formats.placeholders import PLACEHOLDER_LOGINS
from exposure.dumps.records import LeakRecord, Rejected
from exposure.ingest import evaluator
from exposure.ingest.matching import EnrolledIndex, Fingerprinter
from exposure.passwords.verifier import looks_like_hash

# CI builds the extension: a silently missing one would skip the fast path everywhere.
assert fastpath.AVAILABLE, "exposure.dumps._fastscan is not built (pip install -e . compiles it)"

PEPPER = bytes(range(32))
FINGERPRINTER = Fingerprinter(PEPPER, login_id_case_sensitive=False, phone_region="JP")

TRAPS = [
    "taro@example.jp:Sakura2025",
    "TARO@Example.JP:Sakura2025",
    "  taro@example.jp  :  spaced password  ",
    "taro@example.jp;semi",
    "taro@example.jp|pipe|and:more",
    "taro@example.jp:",
    "taro@example.jp",
    "Fuji-San_3776:hanako@example.jp",
    "#Sakura2025:hanako@example.jp",
    "# comment: not@data.jp",
    "-- rule or comment@x.jp:pw",
    "Seller: @shop",
    "ABCD1234:x;hanako@example.jp",
    "ab@cd@example.jp:pw",
    "@example.jp:pw",
    "taro@:pw",
    "taro@localhost:pw",
    "taro@exa_mple.jp:pw",
    "taro@-example.jp:pw",
    "taro@example-.jp:pw",
    "taro@ab--cd.jp:pw",
    "taro@xn--wgv71a.jp:pw",
    "taro@example.jp.:pw",
    "taro@example..jp:pw",
    "taro@123.456:pw",
    "ta ro@example.jp:pw",
    "Taro.Yamada+news@GMail.com:pw",
    "+.@gmail.com:pw",
    "x@googlemail.com:pw",
    "taro@example.jp:5f4dcc3b5aa765d61d8327deb882cf99",
    "taro@example.jp: 5F4DCC3B5AA765D61D8327DEB882CF99 ",
    "taro@example.jp:*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19",
    "taro@example.jp:$2b$12$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0",
    "taro@example.jp:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
    "taro@example.jp:12345678901234567890123456789012",
    "taro@example.jp:    ",
    "https://trade.example.jp/login:taro@example.jp:pw",
    "a" * 300 + "@example.jp:pw",
    "a" * 330 + "@example.jp:pw",
    "b" * 250 + "@example.jp:pw",
    "taro@example.jp:" + "p" * 20000,
    "",
    " ",
    "<html>",
    "[section]",
    "https://trade.mirai-sec.co.jp/login:taro@example.jp:Sakura2025",
    "HTTP://Trade.Example.JP:taro@example.jp:pw",
    "http://h/p?q=1#f:taro@example.jp:",
    "https://h:8443:taro@example.jp:pw",
    "https://h:8443/login:taro@example.jp:pw",
    "https://h/:12345:pw",
    "https://h/:123456:pw",
    "https://h/x:1234:pw",
    "https://h/x:taro/x@example.jp:pw",
    "https://h/x:taro@example.jp",
    "https://user@h/x:taro@example.jp:pw",
    "https://[2001:db8::1]/x:taro@example.jp:pw",
    "https://h/x?next=https://y/:taro@example.jp:pw",
    "https://h/x taro@example.jp pw",
    "https://h/x|taro@example.jp|pw",
    "https://h.example./x:taro@example.jp:pw",
    "https://h_x.example/x:taro@example.jp:pw",
    "https://h\\x/y:taro@example.jp:pw",
    "android://abc==@com.example.app/:taro@example.jp:pw",
    "trade.sec.example:taro@example.jp:pw",
    "httpx://h/x:taro@example.jp:pw",
    "https:/h/x:taro@example.jp:pw",
    "https://h/x:ID12345:pw",
    "naïve@example.jp:pw",
    "山田@example.jp:パスワード",
    "taro@例え.jp:pw",
    "taro@example.jp:pässword",
    "https://例え.jp/login:taro@example.jp:pw",
    "taro@example.jp:p\rw",
    "taro@example.jp:pw\r",
    "taro@example.jp:\tpw",
]
ALPHABET = string.ascii_letters[:8] + "XYZ0129@@@...::;|  #-_+$*{}/<>[" + "gmail.com"


def _random_line(rng: random.Random) -> str:
    if rng.random() < 0.25:  # URL lines, mutated
        url = rng.choice(["https://", "HTTP://", "http://", "https:/", "ftp://", ""]) + rng.choice(
            ["trade.example.jp", "h", "[::1]", "u@h", "H.Example.", "h:8443", "h:99999", ""]
        )
        path = rng.choice(["", "/", "/login", "/a?b=c#d", "/x:y", "?next=http://z/"])
        line = f"{url}{path}{rng.choice(':| ')}{_random_combo(rng)}"
        return _mutate(rng, line)
    if rng.random() < 0.5:  # mostly plausible e-mail lines, mutated
        local = "".join(rng.choice("abcXY.+_-1") for _ in range(rng.randint(0, 8)))
        domain = rng.choice(["example.jp", "gmail.com", "Ex-a.co.jp", "x", "a.b", "q--r.jp", ""])
        password = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))
        return _mutate(rng, f"{local}@{domain}{rng.choice(':;|')}{password}")
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))


def _random_combo(rng: random.Random) -> str:
    local = "".join(rng.choice("abcXY.+_-1") for _ in range(rng.randint(0, 8)))
    login = rng.choice([f"{local}@example.jp", f"{local}@Gmail.com", local, "12345", ""])
    password = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))
    return f"{login}{rng.choice(':|: ')}{password}"


def _mutate(rng: random.Random, line: str) -> str:
    if rng.random() < 0.3:
        i = rng.randrange(len(line) + 1)
        line = line[:i] + rng.choice(ALPHABET) + line[i:]
    return line


def _corpus_lines() -> list[str]:
    return list(_corpus())


@functools.cache  # the same 20,000 lines for every test that reads them: generated once
def _corpus() -> tuple[str, ...]:
    rng = random.Random(7)
    return (*TRAPS, *(_random_line(rng) for _ in range(20_000)))


def _block(first_line_no: int, texts: list[str]) -> TextBlock:
    """Lines as the decoder hands them over: UTF-8, some ending in CRLF."""
    data = "".join(t + ("\r\n" if i % 7 == 3 else "\n") for i, t in enumerate(texts)).encode()
    return TextBlock(first_line_no, data, len(texts), 0, len(data))


@pytest.fixture(params=["sha-extensions", "openssl"], autouse=True)
def hashing(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test runs with the fingerprints hashed by the CPU's SHA extensions (two at a time;
    a no-op where the CPU lacks them) and by OpenSSL alone."""
    wanted = request.param == "sha-extensions"
    before = fastpath._fastscan.set_sha_extensions(wanted)
    # In force where the CPU has them: else the first run would test OpenSSL twice.
    assert fastpath._fastscan.set_sha_extensions(wanted) == (
        wanted and fastpath._fastscan.SHA_EXTENSIONS
    )
    yield
    fastpath._fastscan.set_sha_extensions(before)


def _expand(items: list[LeakRecord | Rejected | RecordBlock]) -> list[LeakRecord | Rejected]:
    out: list[LeakRecord | Rejected] = []
    for item in items:
        if isinstance(item, RecordBlock):
            out.extend(item.record(i) for i in range(item.count))
        else:
            out.append(item)
    return sorted(out, key=lambda item: item.line_no)


def test_the_sha_extensions_are_used_where_the_cpu_has_them() -> None:
    with open("/proc/cpuinfo") if sys.platform == "linux" else open(os.devnull) as cpuinfo:
        flags = {f for line in cpuinfo if line.startswith("flags") for f in line.split()}
    if "sha_ni" in flags and {"sse4_1", "ssse3"} <= flags:
        assert fastpath._fastscan.SHA_EXTENSIONS
    elif sys.platform == "linux":
        assert not fastpath._fastscan.SHA_EXTENSIONS


def test_constants_mirror_the_python_rules() -> None:
    scan = fastpath._fastscan
    assert scan.SHORT_LINE == lines.SHORT_LINE
    assert scan.MAX_LOGIN_CHARS == combo.MAX_LOGIN_CHARS
    assert scan.MAX_EMAIL == identity._MAX_EMAIL
    # Every placeholder a fast URL line's login can be (printable ASCII, no ' ', ':', '/', '|').
    reachable = {
        p
        for p in PLACEHOLDER_LOGINS
        if p and p.isascii() and p.isprintable() and not set(p) & set(" :/|")
    }
    assert set(scan.PLACEHOLDER_LOGINS) == reachable


# Generated lines of every shape the rules turn on (docs/formats.md, "Messy lines from
# compilations"): separators with and without padding, several identifiers, the e-mail after
# a user name, TAB rows, URL lines with ':' '|' ';' and ports, placeholder logins, one-line
# stealer records, '@' and hash-like values in passwords.
_LOCAL = st.text("abcXY.+_-19", min_size=1, max_size=8)
_EMAIL = st.builds(
    "{}@{}".format, _LOCAL, st.sampled_from(["example.jp", "Gmail.com", "ex-a.co.jp", "x", "b.c"])
)
_LOGIN_ID = st.sampled_from(["ABCD1234", "taro_y", "12345", "Fuji-San_3776", "#Sakura"])
_PLACEHOLDER = st.sampled_from(["UNKNOWN", "null", "-", "N/A", "(none)", "Not_Saved", "??"])
_LOGIN = st.one_of(_EMAIL, _LOGIN_ID, _PLACEHOLDER, st.just(""))
_PASSWORD = st.one_of(
    st.text("abcXYZ0129@.:;|#-$*{}/ ", max_size=14),
    st.sampled_from(["5f4dcc3b5aa765d61d8327deb882cf99", "p@ss.example.jp", " padded "]),
    _EMAIL,
)
_SEP = st.sampled_from([":", ";", "|", "\t", "：", " : ", " | ", ": ", " ;", "\t "])
_META = st.sampled_from(["2019-04-01", "", "42", "203.0.113.9", "2019/4/1 12"])
_URL = st.builds(
    "{}{}{}".format,
    st.sampled_from(["https://", "HTTP://", "http://", "android://k==@", ""]),
    st.sampled_from(["trade.sec.example", "h", "[::1]", "h:8443", "u@h", "h.example."]),
    st.sampled_from(["", "/", "/login", "/a?b=c#d", "/x;jsessionid=1", "?next=http://z/"]),
)


def _joined(parts: list[str], seps: list[str]) -> str:
    line = parts[0]
    for part, sep in zip(parts[1:], seps, strict=False):
        line += sep + part
    return line


_COMBO_LINE = st.builds(lambda *p: _joined([p[0], p[2]], [p[1]]), _LOGIN, _SEP, _PASSWORD)
_TWO_IDS = st.builds(lambda a, s, b, t, p: a + s + b + t + p, _EMAIL, _SEP, _EMAIL, _SEP, _PASSWORD)
_EMAIL_LATER = st.builds(
    lambda parts, seps: _joined(parts, seps),
    st.tuples(_LOGIN, _META, _META, _EMAIL, _PASSWORD).map(list),
    st.lists(_SEP, min_size=4, max_size=4),
)
_ULP_LINE = st.builds(
    lambda url, s1, login, s2, pw: url + s1 + login + s2 + pw, _URL, _SEP, _LOGIN, _SEP, _PASSWORD
)
_INLINE = st.builds("URL: {} | USER: {} | PASS: {}".format, _URL, _LOGIN, _PASSWORD)
_LINE = st.one_of(_COMBO_LINE, _TWO_IDS, _EMAIL_LATER, _ULP_LINE, _INLINE)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(texts=st.lists(_LINE, min_size=1, max_size=40))
@pytest.mark.parametrize(("fmt", "parse"), [("combo", iter_combo), ("ulp", iter_ulp)])
def test_generated_shapes_read_the_same_natively(fmt: str, parse: Any, texts: list[str]) -> None:
    texts = [t.replace("\n", " ").replace("\r", " ") for t in texts]
    fast = _expand(list(iter_blocks(fmt, [_block(1, texts)])))
    assert fast == list(parse(enumerate(texts, 1)))


def test_generated_shapes_keep_the_native_path_busy() -> None:
    """The differential test above means something only if the native path takes lines."""
    texts = [f"user{n}@example.jp{sep}pw{n}" for n in range(50) for sep in (":", " | ", " : ")]
    texts += [f"https://trade.sec.example/p:ID{n}: pw{n}" for n in range(50)]
    fast = [i for i in iter_blocks("combo", [_block(1, texts)]) if isinstance(i, RecordBlock)]
    assert sum(b.count for b in fast) == len(texts)


@pytest.mark.parametrize(("fmt", "parse"), [("combo", iter_combo), ("ulp", iter_ulp)])
def test_split_gives_exactly_what_the_python_parser_gives(fmt: str, parse: Any) -> None:
    texts = _corpus_lines()
    block = _block(10, texts)
    fast = _expand(list(iter_blocks(fmt, [block])))
    slow = list(parse((10 + i, t) for i, t in enumerate(texts)))
    assert fast == slow
    # And the fast path is taken for the plain lines, not just deferred wholesale.
    blocks = [item for item in iter_blocks(fmt, [block]) if isinstance(item, RecordBlock)]
    records = [b.record(i) for b in blocks for i in range(b.count)]
    assert sum(r.leak_type == "ulp" and r.site is not None for r in records) > 100
    if fmt == "combo":
        assert sum(r.leak_type == "combo" for r in records) > 4_000


def test_split_mixes_blocks_and_single_lines_in_order() -> None:
    block = _block(3, ["a@b.jp:1", "no delimiter here", "c@d.jp:2"])
    items = list(iter_blocks("combo", [(1, "x@y.jp:0"), (2, "#"), block, (6, "z@w.jp:9")]))
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["LeakRecord", "Rejected", "RecordBlock", "Rejected", "LeakRecord"]
    texts = ["x@y.jp:0", "#", "a@b.jp:1", "no delimiter here", "c@d.jp:2", "z@w.jp:9"]
    assert _expand(items) == list(iter_combo(enumerate(texts, 1)))


def _python_keys(login: str) -> list[bytes]:
    return [k.fingerprint for k in FINGERPRINTER.keys(0, login)]


@pytest.mark.parametrize("feed_corpus", [True, False])
def test_match_defers_every_record_the_python_path_could_match(feed_corpus: bool) -> None:
    texts = _corpus_lines()
    blocks = list(iter_blocks("combo", [_block(1, texts)]))
    block = next(i for i in blocks if isinstance(i, RecordBlock))
    records = [block.record(i) for i in range(block.count)]
    # Enrol every third login (strict and variant keys), as enrolment would.
    enrolled = [fp for r in records[::3] for fp in _python_keys(r.login)]
    index = EnrolledIndex.build(enrolled)
    positions, digests = block.match(PEPPER, index.lookup_table(), feed_corpus)
    deferred = set(positions)
    expected_digests = []
    plain = re.compile(r"[A-Za-z0-9._+-]{1,100}@(example\.jp|gmail\.com|a\.b)")
    plain_password = re.compile("[a-zA-Z0-9]*")
    for position, record in enumerate(records):
        keys = _python_keys(record.login)
        if position in deferred:
            # Plain addresses with plain passwords are deferred only when enrolled.
            if plain.fullmatch(record.login) and plain_password.fullmatch(record.password or ""):
                assert index.contains(keys).any(), record.line_no
            continue
        # Settled natively: readable, enrolled by no key, password plain or absent.
        assert keys, record.line_no
        assert not index.contains(keys).any(), record.line_no
        password = record.password
        assert password is None or not looks_like_hash(password), record.line_no
        if password and feed_corpus:
            expected_digests.append(hashlib.sha1(password.encode(), usedforsecurity=False).digest())
    assert digests == b"".join(expected_digests)
    assert set(range(0, len(records), 3)) <= deferred  # every enrolled record


def test_match_keys_are_the_documented_fingerprints() -> None:
    text = "Taro.Yamada+x@GMAIL.com:pw\nhana@ex.jp:1\n"
    items = iter_blocks("combo", [_block(1, text.splitlines())])
    block = next(i for i in items if isinstance(i, RecordBlock))
    strict = identifier_fingerprint(PEPPER, "email", "taro.yamada+x@gmail.com")
    variant = identifier_fingerprint(PEPPER, "email", "taroyamada@gmail.com")
    other = identifier_fingerprint(PEPPER, "email", "hana@ex.jp")
    for enrolled, expected in (([strict], [0]), ([variant], [0]), ([other], [1]), ([], [])):
        index = EnrolledIndex.build(enrolled)
        assert block.match(PEPPER, index.lookup_table(), True)[0] == expected


def test_every_key_length_hashes_to_its_fingerprint() -> None:
    """Logins from 3 to 70 characters: their keys are one-block messages up to 55 bytes and
    longer ones; consumer Gmail adds a variant key. Enrolling every key of one record in
    three, each such record (in any position of a pair hashed together) must be deferred and
    no other."""
    logins = [f"{'a' * n}@x.jp" for n in range(1, 65)] + [
        f"T.a{'b' * n}+x@Gmail.com" for n in range(0, 50)
    ]
    block = next(
        i
        for i in iter_blocks("combo", [_block(1, [f"{x}:pw" for x in logins])])
        if isinstance(i, RecordBlock)
    )
    assert block.count == len(logins)
    for offset in range(3):
        chosen = range(offset, len(logins), 3)
        index = EnrolledIndex.build([fp for i in chosen for fp in _python_keys(logins[i])])
        assert block.match(PEPPER, index.lookup_table(), False)[0] == list(chosen)
    variants = EnrolledIndex.build([_python_keys(x)[-1] for x in logins if "Gmail" in x])
    deferred = block.match(PEPPER, variants.lookup_table(), False)[0]
    assert deferred == [i for i, x in enumerate(logins) if "Gmail" in x]


def test_login_checks_hold_at_every_position_of_a_16_byte_run() -> None:
    """Logins are lower-cased and checked 16 bytes at a time, and byte by byte near the end of
    the text: an upper-case letter, a space or a second '@' anywhere in the first 41 bytes is
    judged alike both ways. A login the Python path must read is deferred; a plain one only
    when one of its keys is enrolled."""
    local = "abcdefghijklmnopqrstuvwxyz0123456789abcd"
    logins = []
    for p in range(len(local) + 1):
        logins.append(local[:p] + local[p : p + 1].upper() + local[p + 1 :] + "@Example.JP")
        logins.append(local[:p] + " " + local[p + 1 :] + "@example.jp")
        logins.append(local[:p] + "@" + local[p + 1 :] + "@example.jp")

    def needs_python(login: str) -> bool:
        return " " in login or login.count("@") != 1 or login.startswith("@")

    # Every plain login enrolled (a wrong lower-casing misses one), then none (a wrong
    # check defers one); one block of them all (16 bytes at a time), then each alone (the
    # end of the text is read byte by byte).
    for enrolled in (logins[::3], []):
        index = EnrolledIndex.build([fp for x in enrolled for fp in _python_keys(x)])
        fast = 0
        for group in [logins, *([x] for x in logins)]:
            items = iter_blocks("combo", [_block(1, [f"{x}:pw" for x in group])])
            for block in (item for item in items if isinstance(item, RecordBlock)):
                records = [block.record(i).login for i in range(block.count)]
                deferred, _ = block.match(PEPPER, index.lookup_table(), False)
                assert deferred == [
                    i for i, x in enumerate(records) if needs_python(x) or x in enrolled
                ], group
                fast += block.count
        assert fast > len(logins)  # most of them natively, in the big block and alone


def test_every_password_length_digests_like_hashlib() -> None:
    """Passwords of 1 to 70 characters (one SHA-1 block holds 55), hashed two at a time and
    one by one: each digest is hashlib's, in line order."""
    tails = ["".join(chr(33 + (n * 7 + i) % 90) for i in range(n)) for n in range(70)]
    # Printable, nothing that looks like a hash ('$', or '*' / '{' first), and no '@' (which
    # could start a second identifier: such lines take the Python path).
    passwords = ["p" + t.replace(":", ";").replace("$", "S").replace("@", "a") for t in tails]
    texts = [f"user{n}@example.jp:{p}" for n, p in enumerate(passwords)]
    block = next(i for i in iter_blocks("combo", [_block(1, texts)]) if isinstance(i, RecordBlock))
    assert [block.record(i).password for i in range(block.count)] == passwords
    positions, digests = block.match(PEPPER, EnrolledIndex.build([]).lookup_table(), True)
    assert positions == []
    assert digests == b"".join(
        hashlib.sha1(p.encode(), usedforsecurity=False).digest() for p in passwords
    )


def test_tail_and_bad_arguments() -> None:
    block = next(
        i
        for i in iter_blocks("combo", [_block(5, ["a@b.jp:1", "c@d.jp:2", "e@f.jp:3"])])
        if isinstance(i, RecordBlock)
    )
    assert [r.line_no for r in (block.tail(1).record(i) for i in range(2))] == [6, 7]
    assert "a@b.jp" not in repr(block)
    with pytest.raises(TypeError):
        fastpath._fastscan.split_combo("taro@example.jp:pw\n")  # bytes only
    with pytest.raises(ValueError):
        fastpath._fastscan.match_combo(b"x\n", block.packed, PEPPER, b"", b"", 1, True)
    table = EnrolledIndex.build([]).lookup_table()
    with pytest.raises(ValueError):  # a bucket table of the wrong size
        fastpath._fastscan.match_combo(block.data, block.packed, PEPPER, b"", b"\0" * 8, 2, True)
    assert block.match(PEPPER, table, False) == ([], b"")


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 70_001])
def test_scan_lines_counts_and_screens_like_bytes_methods(size: int) -> None:
    rng = random.Random(size)
    for alphabet in (b"ab\n\r\x7f", b"ab\n\r\x00", b"ab\n\r\x80", b"ab\n\r\xff"):
        data = bytes(rng.choices(alphabet, k=size))
        for start, end in ((0, -1), (size // 3, size - size // 4), (size, size)):
            block = data[start:] if end < 0 else data[start:end]
            plain = block.isascii() and b"\x00" not in block
            assert scan_lines(data, start, end) == (block.count(b"\n"), plain)
    with pytest.raises(TypeError):
        scan_lines(bytearray(b"a\n"))
    with pytest.raises(ValueError):
        scan_lines(b"a\n", 2, 1)  # a range outside the data


def test_a_block_is_a_range_of_its_chunk() -> None:
    """Split reads only data[start:end], numbering lines from start, offsets into data."""
    lines_ = ["x@y.jp:1", "taro@example.jp:pw", "# noise", "hana@example.jp:2"]
    data = b"@@partial line\n" + "".join(t + "\n" for t in lines_).encode() + b"tail without"
    start = data.index(b"x@y")
    end = data.rindex(b"\n") + 1
    items = list(iter_blocks("combo", [TextBlock(10, data, len(lines_), start, end)]))
    records = _expand(items)
    assert [(r.line_no, getattr(r, "login", None)) for r in records] == [
        (10, "x@y.jp"),
        (11, "taro@example.jp"),
        (12, None),
        (13, "hana@example.jp"),
    ]


def test_matching_threads_yield_to_the_pipeline() -> None:
    """The matching pool runs below the event loop's priority (Linux), never the caller."""
    if sys.platform != "linux":
        pytest.skip("thread priorities are per process outside Linux")

    def priority() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    mine = priority()
    assert evaluator.matchers().submit(priority).result() == min(mine + 10, 19)
    assert priority() == mine
