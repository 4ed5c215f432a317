"""Column roles for tabular leaks (CSV headers, JSON keys, SQL column names).

A column name is folded (NFKC, lower-case, spaces/``_``/``-``/``・`` removed) and looked up
in one table shared by CSV, JSON lines and SQL, English and Japanese alike
(``メールアドレス``, ``ログインID``, ``電話番号``, ``取引暗証番号``).

**One record per identifier.** A row may carry several identifier columns (``email`` *and*
``login_id``, or a phone number): it yields one :class:`LeakRecord` per distinct non-empty
identifier value, in column order, all with the same password, site and ``has_pin``. The
matcher then tries each as every kind it could be. Placeholder values (``NULL``, ``N/A``,
``-``: :mod:`~exposure.dumps.formats.placeholders`) are no identifier. A row without any
identifier is rejected ``placeholder_login`` if it held a placeholder, else ``no_login``.

**Password column.** Plain-text names (``password``, ``パスワード``) are preferred over hash
names (``password_hash``, ``hash``); the first non-empty value wins. Hash values are passed on
as they are: deciding that a value is a hash is the password module's job. An empty password
is ``None``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from exposure.dumps.formats.placeholders import is_placeholder_login
from exposure.dumps.formats.sites import site_from_url
from exposure.dumps.records import LeakRecord, LeakType, Rejected

IDENTIFIER, PASSWORD, PASSWORD_HASH, PIN, SITE = "identifier", "password", "hash", "pin", "site"

_FOLD = str.maketrans("", "", " _-・.\ufeff\"'`[]")

_ROLES: dict[str, str] = {
    # e-mail; login IDs and account numbers; phone numbers
    **dict.fromkeys(
        """email mail emailaddress mailaddress useremail usermail eメール eメールアドレス メール
        メールアドレス メアド
        login loginid loginname username user userid account accountid accountno accountnumber
        memberid customerno customernumber ログイン ログインid ログイン名 ユーザー ユーザーid
        ユーザー名 ユーザid ユーザ名 口座番号 会員id 会員番号 顧客番号 お客様番号
        phone phonenumber tel telephone telno mobile mobilephone cellphone 電話番号 電話 携帯番号
        携帯電話番号 携帯電話""".split(),
        IDENTIFIER,
    ),
    **dict.fromkeys(
        """password pass passwd pwd pw plainpassword passwordplain userpassword パスワード
        ログインパスワード""".split(),
        PASSWORD,
    ),
    **dict.fromkeys(
        """passwordhash passwdhash passhash hash hashedpassword pwdhash passwordencrypted
        encryptedpassword パスワードハッシュ""".split(),
        PASSWORD_HASH,
    ),
    **dict.fromkeys(
        "pin pincode tradingpin tradepin 取引暗証番号 暗証番号 取引パスワード".split(), PIN
    ),
    **dict.fromkeys("url site domain host hostname website origin サイト ドメイン".split(), SITE),
}


@lru_cache(maxsize=4096)
def column_role(name: str) -> str | None:
    """Role of a column name or JSON key, or ``None`` for columns we ignore (name, address)."""
    return _ROLES.get(unicodedata.normalize("NFKC", name).strip().lower().translate(_FOLD))


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Which positions of a row hold identifiers, passwords, PINs and sites."""

    identifiers: tuple[int, ...]
    passwords: tuple[int, ...]  # plain-text columns first, then hash columns
    pins: tuple[int, ...]
    sites: tuple[int, ...]
    width: int

    @classmethod
    def from_names(cls, names: Sequence[str]) -> ColumnMap:
        roles = [column_role(n) for n in names]

        def at(role: str) -> tuple[int, ...]:
            return tuple(i for i, r in enumerate(roles) if r == role)

        return cls(at(IDENTIFIER), at(PASSWORD) + at(PASSWORD_HASH), at(PIN), at(SITE), len(names))

    @property
    def usable(self) -> bool:
        """True when rows can yield records (there is at least one identifier column)."""
        return bool(self.identifiers)

    def records(
        self,
        values: Sequence[str | None],
        line_no: int,
        *,
        ambiguous: bool = False,
    ) -> list[LeakRecord] | Rejected:
        """Records of one row (see the module docstring), or ``Rejected(line_no, "no_login")``."""
        n = len(values)
        logins: list[str] = []
        placeholders = 0
        for i in self.identifiers:
            value = (values[i] or "").strip() if i < n else ""
            if is_placeholder_login(value):
                placeholders += value != ""
            elif value not in logins:
                logins.append(value)
        if not logins:
            return Rejected(line_no, "placeholder_login" if placeholders else "no_login")
        password = next((values[i] for i in self.passwords if i < n and values[i]), None)
        has_pin = any(i < n and (values[i] or "").strip() for i in self.pins)
        raw_site = next((values[i] for i in self.sites if i < n and values[i]), None)
        site = site_from_url(raw_site) if raw_site else None
        return [
            LeakRecord(
                login,
                password,
                LeakType.BREACH_RECORD,
                line_no,
                site=site,
                has_pin=has_pin,
                ambiguous=ambiguous,
            )
            for login in logins
        ]
