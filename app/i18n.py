"""Translations (Babel catalogs in app/locale) and the display formats for dates and money.

The language is chosen per request (the account's choice, else the `lang` cookie, else KEHU_LANGUAGE) and kept in
a context variable, so `_()` in Python and in templates speaks the same language within one request.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from markupsafe import Markup

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = {"zh-CN": "zh_CN", "en": "en"}
DEFAULT_LANGUAGE = "zh-CN"
SHANGHAI = ZoneInfo("Asia/Shanghai")

_language: ContextVar[str] = ContextVar("language", default=DEFAULT_LANGUAGE)


def normalise_language(value: str | None) -> str | None:
    """'zh-cn', 'zh_CN', 'zh' → 'zh-CN'; 'en-US' → 'en'; anything else → None."""
    if not value:
        return None
    value = value.strip().replace("_", "-").lower()
    if value.startswith("zh"):
        return "zh-CN"
    if value.startswith("en"):
        return "en"
    return None


def set_language(language: str | None) -> None:
    _language.set(normalise_language(language) or DEFAULT_LANGUAGE)


def current_language() -> str:
    return _language.get()


@cache
def _translations(language: str) -> NullTranslations:
    return Translations.load(str(LOCALE_DIR), [LANGUAGES[language]], domain="messages")


def gettext(message: str, **variables: object) -> str:
    text = _translations(current_language()).gettext(message)
    return text % variables if variables else text


def template_gettext(message: str, **variables: object) -> Markup:
    """`_()` in templates: what Jinja's newstyle gettext gives (the translation is markup, the variables put in
    are escaped, `%%` is `%`), without its two context calls and its formatting of every text, which cost a
    customer page with its few hundred words a sixth of its time."""
    # Translations are ours, written as markup, as Jinja takes them.
    text = Markup(_translations(_language.get()).gettext(message))  # noqa: S704
    return text % variables if variables or "%" in text else text


def ngettext(singular: str, plural: str, n: int, **variables: object) -> str:
    text = _translations(current_language()).ngettext(singular, plural, n)
    variables.setdefault("num", n)
    return text % variables


_ = gettext


def N_(message: str) -> str:
    """Marks text for the catalogue where it is defined; `_` translates it where it is shown."""
    return message


def local(value: datetime) -> datetime:
    return value.astimezone(SHANGHAI)


def format_datetime(value: datetime | None) -> str:
    return local(value).strftime("%Y-%m-%d %H:%M") if value else ""


def format_time_or_date(value: datetime | None) -> str:
    """Today's moments as 14:05, older ones as 11-26 14:05 (chat lists and transcripts)."""
    if value is None:
        return ""
    here = local(value)
    if here.date() == datetime.now(SHANGHAI).date():
        return here.strftime("%H:%M")
    return here.strftime("%m-%d %H:%M")


def format_date(value: date | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = local(value).date()
    # ISO dates read the same in Chinese and English, and isoformat is much cheaper than Babel's pattern formatter.
    return value.isoformat()


def format_money(fen: int | None) -> str:
    """Whole fen → '¥1,234,567.50'."""
    if fen is None:
        return ""
    amount = Decimal(fen) / 100
    return "¥" + format_decimal(amount, format="#,##0.00", locale="en")
