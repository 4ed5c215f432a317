"""The console's languages: its own strings (``locales/<lang>.json``) over the report's, so
labels such as action and status names read the same in the console and the report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from importlib import resources

from aiohttp import web

from exposure.report.i18n import LANGUAGES, Locale, report_strings
from exposure.settings import Settings

LANGUAGE_COOKIE = "exposure_lang"
# The policy writes an exposure's reason in English from these fixed parts
# (exposure.domain.policy._reason); the console shows it in Japanese part by part. Longer
# parts first, so "is not the" is not read as "is the".
_REASON_PARTS_JA = (
    (
        "leaked password is not the customer's current password",
        "漏えいしたパスワードは顧客の現在のパスワードではない",
    ),
    (
        "a close variant of a leaked password is the customer's current password",
        "漏えいしたパスワードのわずかな変形が顧客の現在のパスワード",
    ),
    (
        "leaked password is the customer's current password",
        "漏えいしたパスワードは顧客の現在のパスワード",
    ),
    (
        "leaked password could not be checked: no password hash is enrolled",
        "パスワードハッシュが未登録のため照合できない",
    ),
    ("identifier leaked without a usable password", "識別子のみ漏えい（使えるパスワードなし）"),
    (
        "a login session was stolen (session cookie leak)",
        "ログインセッションが窃取された（セッションCookieの漏えい）",
    ),
    (" (broker-site leak)", "（証券サイトでの漏えい）"),
    (
        "; matched only through an identifier variant, so a reset is not forced",
        "。識別子の表記ゆれでのみ一致したため強制リセットはしない",
    ),
    ("; the leak also carried a trading PIN", "。取引暗証番号も漏えい"),
)


@cache
def console_strings(lang: str) -> dict[str, str]:
    """The report's strings overlaid with the console's, for ``lang``."""
    path = resources.files("exposure.console").joinpath("locales", f"{lang}.json")
    own: dict[str, str] = json.loads(path.read_text("utf-8"))
    return {**report_strings(lang), **own}


@dataclass(frozen=True, slots=True)
class ConsoleLocale(Locale):
    """A :class:`~exposure.report.i18n.Locale` that also knows the console's strings."""

    @property
    def strings(self) -> dict[str, str]:
        return console_strings(self.lang)

    def reason(self, text: str) -> str:
        """An exposure's stored reason in this language (unknown parts stay as written)."""
        if self.lang != "ja":
            return text
        for english, japanese in _REASON_PARTS_JA:
            text = text.replace(english, japanese)
        return text

    def duration(self, span: timedelta) -> str:
        """A span of time as the report writes hours (minutes under an hour)."""
        return self.hours(abs(span.total_seconds()) / 3600)


def choose_language(request: web.Request, settings: Settings) -> str:
    """The language cookie if set, else the browser's preference between ja and en, else
    ``EXPOSURE_REPORT_LANG``."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    for part in request.headers.get("Accept-Language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return settings.report_lang
