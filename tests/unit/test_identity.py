from __future__ import annotations

import pytest

from exposure.domain.identity import (
    IdentifierKind,
    NormalisedIdentifier,
    candidates,
    mask,
    normalise,
    normalise_email,
    normalise_login_id,
    normalise_phone,
)
from exposure.errors import InvalidIdentifier, SkippableError

EMAIL = IdentifierKind.EMAIL
LOGIN = IdentifierKind.LOGIN_ID
PHONE = IdentifierKind.PHONE


@pytest.mark.parametrize(
    ("raw", "strict"),
    [
        ("taro@example.jp", "taro@example.jp"),
        ("Taro.Yamada@Example.JP", "taro.yamada@example.jp"),
        ("ＴＡＲＯ@EXAMPLE.JP", "taro@example.jp"),
        ("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", "taro@example.jp"),
        ("taro@example｡jp", "taro@example.jp"),
        ("taro@example。jp", "taro@example.jp"),
        ("\u3000taro@example.jp\u3000", "taro@example.jp"),
        (" \ttaro@example.jp\r\n", "taro@example.jp"),
        ("taro@例え.jp", "taro@xn--r8jz45g.jp"),
        ("taro@例え。ｊｐ", "taro@xn--r8jz45g.jp"),
        ("taro@xn--r8jz45g.jp", "taro@xn--r8jz45g.jp"),
        ("hans@STRASSE.de", "hans@strasse.de"),
        ("hans@straße.de", "hans@xn--strae-oqa.de"),  # IDNA 2008: ß is not 'ss'
        ("taro@example.jp.", "taro@example.jp"),
        # Pre-2009 Japanese carrier addresses: accepted as they are.
        ("taro..yamada.@docomo.ne.jp", "taro..yamada.@docomo.ne.jp"),
        (".taro@ezweb.ne.jp", ".taro@ezweb.ne.jp"),
        ("taro._.@softbank.ne.jp", "taro._.@softbank.ne.jp"),
    ],
)
def test_email_strict_key(raw: str, strict: str) -> None:
    result = normalise_email(raw)
    assert result.kind is EMAIL
    assert result.strict == strict


@pytest.mark.parametrize(
    ("raw", "strict", "variant"),
    [
        (
            "Taro.Yamada+news@googlemail.com",
            "taro.yamada+news@googlemail.com",
            "taroyamada@gmail.com",
        ),
        ("taro.yamada@gmail.com", "taro.yamada@gmail.com", "taroyamada@gmail.com"),
        ("t.a.r.o+a+b@GMAIL.COM", "t.a.r.o+a+b@gmail.com", "taro@gmail.com"),
        ("taro+news@gmail.com", "taro+news@gmail.com", "taro@gmail.com"),
        ("taro@googlemail.com", "taro@googlemail.com", "taro@gmail.com"),
        ("ｔａｒｏ．ｙ@ｇｍａｉｌ．ｃｏｍ", "taro.y@gmail.com", "taroy@gmail.com"),
        # Every Gmail address has a variant key, even when it equals the strict key.
        ("taroyamada@gmail.com", "taroyamada@gmail.com", "taroyamada@gmail.com"),
        ("+news@gmail.com", "+news@gmail.com", None),
        # No provider rule outside consumer Gmail: dots and tags matter there.
        ("taro.yamada+news@outlook.com", "taro.yamada+news@outlook.com", None),
        ("taro.yamada@hotmail.co.jp", "taro.yamada@hotmail.co.jp", None),
        ("taro.yamada+x@example-broker.co.jp", "taro.yamada+x@example-broker.co.jp", None),
        ("taro.yamada@gmail.com.evil.jp", "taro.yamada@gmail.com.evil.jp", None),
    ],
)
def test_email_variant(raw: str, strict: str, variant: str | None) -> None:
    result = normalise_email(raw)
    assert (result.strict, result.variant) == (strict, variant)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("\u3000 \t", "empty"),
        ("taro.example.jp", "no_at"),
        ("@example.jp", "bad_local_part"),
        ("taro yamada@example.jp", "bad_local_part"),
        ("taro\x00@example.jp", "bad_local_part"),
        ("taro\u200b@example.jp", "bad_local_part"),
        ("a@b@example.jp", "bad_local_part"),
        ("taro@", "bad_domain"),
        ("taro@exa mple.jp", "bad_domain"),
        ("taro@example..jp", "bad_domain"),
        ("taro@-example.jp", "bad_domain"),
        ("taro@exam_ple.jp", "bad_domain"),
        ("taro@localhost", "bad_domain"),
        ("taro@xn--zz.jp", "bad_domain"),
        ("taro@\udcff.jp", "bad_domain"),
        ("\udcff@example.jp", "bad_local_part"),
        ("taro@" + "a" * 64 + ".jp", "bad_domain"),
        ("a" * 250 + "@example.jp", "too_long"),
        ("a" * 2000 + "@example.jp", "too_long"),
    ],
)
def test_email_rejects(raw: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        normalise_email(raw)
    assert (caught.value.kind, caught.value.reason) == ("email", reason)
    assert isinstance(caught.value, SkippableError)


def test_email_at_length_limit_is_accepted() -> None:
    raw = "a" * 65 + "@" + ".".join(["b" * 61] * 3) + ".jp"
    assert len(raw) == 254
    assert normalise_email(raw).strict == raw
    with pytest.raises(InvalidIdentifier) as caught:
        normalise_email("a" + raw)
    assert caught.value.reason == "too_long"


@pytest.mark.parametrize(
    ("raw", "strict"),
    [
        ("ＡＢＣＤ１２３４", "abcd1234"),
        ("TaroYamada", "taroyamada"),
        ("\u3000taro01\u3000", "taro01"),
        ("１２３－４５６７８９０", "123-4567890"),
        ("123\u20104567890", "123-4567890"),  # ‐ hyphen
        ("123\u20114567890", "123-4567890"),  # non-breaking hyphen (NFKC -> U+2010)
        ("123\u20134567890", "123-4567890"),  # – en dash
        ("123\u20144567890", "123-4567890"),  # — em dash
        ("123\u20154567890", "123-4567890"),  # ― horizontal bar
        ("123\u22124567890", "123-4567890"),  # − minus sign
        ("123\u30fc4567890", "123-4567890"),  # ー prolonged sound mark
        ("123\uff704567890", "123-4567890"),  # ｰ half-width prolonged sound mark
        ("123\uff0d4567890", "123-4567890"),  # － full-width hyphen-minus
        ("123-4567890", "123-4567890"),
        ("user_01.x", "user_01.x"),
        ("x" * 128, "x" * 128),
    ],
)
def test_login_id(raw: str, strict: str) -> None:
    result = normalise_login_id(raw)
    assert (result.kind, result.strict, result.variant) == (LOGIN, strict, None)


@pytest.mark.parametrize(
    ("raw", "case_sensitive", "strict"),
    [
        ("TaroYamada", False, "taroyamada"),
        ("TaroYamada", True, "TaroYamada"),
        ("ＴａｒｏＹａｍａｄａ", True, "TaroYamada"),
        ("ＴａｒｏＹａｍａｄａ", False, "taroyamada"),
    ],
)
def test_login_id_case(raw: str, case_sensitive: bool, strict: str) -> None:
    assert normalise_login_id(raw, case_sensitive=case_sensitive).strict == strict


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("\u3000", "empty"),
        ("taro yamada", "bad_login_id"),
        ("taro\u3000yamada", "bad_login_id"),
        ("taro\tyamada", "bad_login_id"),
        ("taro\x1byamada", "bad_login_id"),
        ("taro\u200dyamada", "bad_login_id"),
        ("x" * 129, "too_long"),
    ],
)
def test_login_id_rejects(raw: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        normalise_login_id(raw)
    assert (caught.value.kind, caught.value.reason) == ("login_id", reason)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("090-1234-5678", "JP", "+819012345678"),
        ("09012345678", "JP", "+819012345678"),
        ("+81 90-1234-5678", "JP", "+819012345678"),
        ("+819012345678", "JP", "+819012345678"),
        ("０９０－１２３４－５６７８", "JP", "+819012345678"),
        ("090ー1234ー5678", "JP", "+819012345678"),
        ("(03) 1234-5678", "JP", "+81312345678"),
        ("\u3000090-1234-5678\u3000", "JP", "+819012345678"),
        ("+1 415 555 2671", "JP", "+14155552671"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("+819012345678", "US", "+819012345678"),
    ],
)
def test_phone(raw: str, region: str, e164: str) -> None:
    result = normalise_phone(raw, region=region)
    assert (result.kind, result.strict, result.variant) == (PHONE, e164, None)


@pytest.mark.parametrize(
    "raw",
    [
        "12345678",  # possible length in JP, but not a valid number
        "090-1234-567",
        "+81 90 1234 5678 ext. 9",
        "1-800-FLOWERS",
        "taro",
        "+",
        "090.1234.5678",
    ],
)
def test_phone_rejects(raw: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        normalise_phone(raw)
    assert (caught.value.kind, caught.value.reason) == ("phone", "not_a_phone")


def test_phone_rejects_empty() -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        normalise_phone("\u3000")
    assert caught.value.reason == "empty"


@pytest.mark.parametrize(
    ("kind", "raw", "strict"),
    [
        (EMAIL, "ＴＡＲＯ@example.jp", "taro@example.jp"),
        (LOGIN, "ＴＡＲＯ", "taro"),
        (PHONE, "090-1234-5678", "+819012345678"),
    ],
)
def test_normalise_dispatches_on_kind(kind: IdentifierKind, raw: str, strict: str) -> None:
    result = normalise(kind, raw)
    assert (result.kind, result.strict) == (kind, strict)


def test_normalise_passes_options() -> None:
    assert normalise(LOGIN, "TARO", login_id_case_sensitive=True).strict == "TARO"
    assert normalise(PHONE, "(415) 555-2671", phone_region="US").strict == "+14155552671"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Taro@Example.JP", ((EMAIL, "taro@example.jp"),)),
        ("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", ((EMAIL, "taro@example.jp"),)),
        ("taro..yamada.@docomo.ne.jp", ((EMAIL, "taro..yamada.@docomo.ne.jp"),)),
        ("09012345678", ((LOGIN, "09012345678"), (PHONE, "+819012345678"))),
        ("090-1234-5678", ((LOGIN, "090-1234-5678"), (PHONE, "+819012345678"))),
        ("０９０－１２３４－５６７８", ((LOGIN, "090-1234-5678"), (PHONE, "+819012345678"))),
        ("+81 90-1234-5678", ((PHONE, "+819012345678"),)),
        ("12345678", ((LOGIN, "12345678"),)),
        ("TaroYamada01", ((LOGIN, "taroyamada01"),)),
        ("１２３－４５６７８９０", ((LOGIN, "123-4567890"),)),
        ("", ()),
        ("\u3000", ()),
        ("taro@", ()),
        ("@@@", ()),
        ("taro yamada", ()),
        ("\x00\x01", ()),
        ("\udcff\udcfe", ()),
        ("x" * 5000, ()),
    ],
)
def test_candidates(raw: str, expected: tuple[tuple[IdentifierKind, str], ...]) -> None:
    assert tuple((c.kind, c.strict) for c in candidates(raw)) == expected


def test_candidates_keeps_gmail_variant_and_options() -> None:
    (only,) = candidates("Taro.Yamada+news@googlemail.com")
    assert only.variant == "taroyamada@gmail.com"
    assert [c.strict for c in candidates("TARO", login_id_case_sensitive=True)] == ["TARO"]
    us = candidates("(415) 555-2671", phone_region="US")
    assert [(c.kind, c.strict) for c in us] == [(PHONE, "+14155552671")]


@pytest.mark.parametrize(
    ("identifier", "masked"),
    [
        (normalise_email("taro@example.jp"), "ta***@example.jp"),
        (normalise_email("t.yamada@例え.jp"), "t.***@xn--r8jz45g.jp"),
        (normalise_email("ab@example.jp"), "a***@example.jp"),
        (normalise_email("a@example.jp"), "***@example.jp"),
        (normalise_login_id("taroyamada"), "ta***da"),
        (normalise_login_id("abcdefgh"), "ab***gh"),
        (normalise_login_id("abcdefg"), "***"),
        (normalise_phone("090-1234-5678"), "+81*******78"),
        (normalise_phone("03-1234-5678"), "+81*******78"),
        (normalise_phone("+1 415 555 2671"), "+1*******71"),
    ],
)
def test_mask(identifier: NormalisedIdentifier, masked: str) -> None:
    assert mask(identifier) == masked


@pytest.mark.parametrize(
    "identifier",
    [
        normalise_email("taro.yamada+news@gmail.com"),
        normalise_login_id("secretlogin77"),
        normalise_phone("090-1234-5678"),
    ],
)
def test_repr_hides_keys(identifier: NormalisedIdentifier) -> None:
    shown = repr(identifier) + str(identifier)
    assert identifier.kind.value in shown
    for secret in (identifier.strict, identifier.variant, "taro", "secretlogin", "1234"):
        if secret:
            assert secret not in shown


@pytest.mark.parametrize(
    ("kind", "raw", "fragment"),
    [
        (EMAIL, "secret.person@exa mple.jp", "secret"),
        (EMAIL, "secret person@example.jp", "secret"),
        (LOGIN, "secret login", "secret"),
        (PHONE, "090-9999-SECRET", "9999"),
    ],
)
def test_errors_do_not_carry_the_value(kind: IdentifierKind, raw: str, fragment: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        normalise(kind, raw)
    error = caught.value
    shown = str(error) + repr(error) + repr(error.args)
    assert fragment not in shown.lower()
    assert error.reason in shown
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None
