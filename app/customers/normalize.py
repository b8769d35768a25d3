"""One normalisation for phone numbers, e-mail, WeChat ids and names, shared by the duplicate check,
the search index and the import, so that '+86 138-1234-5678' and '13812345678' are the same person."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

from app.regions import PLACE_PREFIXES

# Legal forms that do not tell two organisations apart; longest first.
_LEGAL_FORMS = (
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "集团公司",
    "集团",
    "分公司",
    "公司",
)
# The place names by their first character, in PLACE_PREFIXES' order: a name is tried against the few that can
# begin it instead of all of them (an import checks 100,000 names).
_PLACES_BY_FIRST: dict[str, tuple[str, ...]] = {}
for _place in PLACE_PREFIXES:
    _PLACES_BY_FIRST[_place[0]] = (*_PLACES_BY_FIRST.get(_place[0], ()), _place)
# Compiled once: re.sub with a pattern string looks it up in re's cache on every call, which for the hundreds of
# thousands of cells of an import cost more than the substitution.
_SPACES = re.compile(r"\s+")
_MOBILE_SEPARATORS = re.compile(r"[\s\-().]")
_NOT_DIGITS = re.compile(r"\D")
_PUNCTUATION = re.compile(r"[\s\-_.,，。·•()（）\[\]【】《》<>\"'“”‘’、/\\|:：;；!！?？&＆]+")


def clean_text(value: str) -> str:
    """Full-width characters to half-width, runs of white space to one space, trimmed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", value)).strip()


def normalise_mobile(raw: str) -> str:
    """A mobile number as stored and compared: mainland numbers as 11 digits, others in E.164 ('+44…').

    Accepts spaces, dashes, dots, brackets and a +86 / 0086 prefix. Raises ValueError for something that is not a
    valid mobile number; returns '' for an empty value.
    """
    value = clean_text(raw)
    if not value:
        return ""
    digits = _MOBILE_SEPARATORS.sub("", value)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    try:
        number = phonenumbers.parse(digits, "CN")
    except phonenumbers.NumberParseException as error:
        raise ValueError(raw) from error
    if not phonenumbers.is_valid_number(number):
        raise ValueError(raw)
    if number.country_code == 86:
        national = str(number.national_number)
        if phonenumbers.number_type(number) not in (
            phonenumbers.PhoneNumberType.MOBILE,
            phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        ):
            raise ValueError(raw)
        return national
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mobile_or_none(raw: str) -> str | None:
    """The normalised mobile, or None when it is not one (for lenient matching of what a visitor typed)."""
    try:
        return normalise_mobile(raw) or None
    except ValueError:
        return None


def format_mobile(stored: str) -> str:
    """'13812345678' → '138 1234 5678' for reading; other numbers as stored."""
    if len(stored) == 11 and stored.isdigit():
        return f"{stored[:3]} {stored[3:7]} {stored[7:]}"
    return stored


def phone_digits(raw: str) -> str:
    """Only the digits of a landline, for matching and search ('0871-6512 3456' → '087165123456')."""
    return _NOT_DIGITS.sub("", unicodedata.normalize("NFKC", raw))


def normalise_email(raw: str) -> str:
    return clean_text(raw).lower()


EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_wechat(raw: str) -> str:
    """WeChat ids are case-insensitive and cannot contain spaces."""
    return _SPACES.sub("", clean_text(raw)).lower()


def name_key(name: str) -> str:
    """A customer's name reduced to what tells it apart: no punctuation, legal form or leading place names.

    '云南省昆明市华信勘测设计有限公司' and '昆明华信勘测设计有限责任公司' both become '华信勘测设计'.
    A name that is only a place and a legal form keeps its place, so '昆明市有限公司' does not become ''.
    """
    key = _PUNCTUATION.sub("", clean_text(name).lower())
    changed = True
    while changed:
        changed = False
        for form in _LEGAL_FORMS:
            if key.endswith(form) and len(key) > len(form):
                key = key.removesuffix(form)
                changed = True
                break
    stripped = key
    changed = True
    while changed:
        changed = False
        for place in _PLACES_BY_FIRST.get(stripped[:1], ()):
            # Keep three characters at least: '北京大学' must not shrink to '大学', which many names share.
            if stripped.startswith(place) and len(stripped) >= len(place) + 3:
                stripped = stripped.removeprefix(place)
                changed = True
                break
    return stripped or key
