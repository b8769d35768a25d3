"""How Chinese names, pinyin and phone numbers are turned into words Meilisearch can match.

Meilisearch segments Chinese with a dictionary, so 王建国 is one word and a search for 建国 would miss it. Each
name therefore also carries its short substrings as separate entries: the query 建国 is segmented exactly like
the entry 建国, so the words match. Phone numbers carry their digit suffixes, because Meilisearch matches the
start of a word (prefix search) but never its middle: 5678 and 1234 (of 138 1234 5678) are each the start of a
suffix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from itertools import chain

from pypinyin import Style
from pypinyin.core import Pinyin

# Substrings of these lengths are indexed. A query of up to GRAM_MAX characters is itself an entry, segmented
# exactly like it; a longer one is segmented into dictionary words, which the entries and the name itself yield.
# Single characters are not needed for that (no query of two or more characters of 1,500 demo customers, nor of
# 800 names strung together from random dictionary words, missed without them) and were a fifth of all entries.
GRAM_MIN = 2
GRAM_MAX = 4
PHONE_MIN = 4
FULL_PINYIN_MAX = 6
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_NOT_DIGIT = re.compile(r"\D")
# What people type around phone numbers: spaces, dashes, brackets, dots and a leading +.
_PHONE_QUERY = re.compile(r"^\+?[\d\s\-().]+$")
# Without a +, 86 or 0086 in front is taken for a country code only before a whole mainland mobile number: 8613
# may as well be four digits in the middle of a landline.
_MOBILE_WITH_COUNTRY_CODE = re.compile(r"^(?:0086|86)(1\d{10})$")

# Surnames whose reading as a name differs from the everyday reading pypinyin gives first.
SURNAME_READINGS = {
    "曾": "zeng",
    "单": "shan",
    "解": "xie",
    "仇": "qiu",
    "区": "ou",
    "朴": "piao",
    "查": "zha",
    "乐": "yue",
    "缪": "miao",
    "覃": "qin",
    "翟": "zhai",
    "盖": "ge",
    "任": "ren",
    "华": "hua",
    "纪": "ji",
    "尉": "yu",
    "员": "yun",
    "召": "shao",
    "秘": "bi",
    "繁": "po",
    "长": "chang",
    "重": "chong",
    "祭": "zhai",
    "燕": "yan",
    "句": "gou",
    "宿": "su",
}

# Tone marks off: pypinyin's own conversion to plain letters costs more than the lookup itself.
_TONELESS = str.maketrans(
    {
        **dict.fromkeys("āáǎà", "a"),
        **dict.fromkeys("ēéěè", "e"),
        **dict.fromkeys("īíǐì", "i"),
        **dict.fromkeys("ōóǒò", "o"),
        **dict.fromkeys("ūúǔù", "u"),
        **dict.fromkeys("ǖǘǚǜü", "v"),
        **dict.fromkeys("ńňǹ", "n"),
        "ḿ": "m",
    }
)

_PINYIN = Pinyin()

# Highlight marks: characters no one types (stripped from every indexed text), replaced by <mark> after the
# text has been escaped, so a customer called <script> is shown as text.
MARK_START = "\ue000"
MARK_END = "\ue001"


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def clean(text: str) -> str:
    return text.replace(MARK_START, "").replace(MARK_END, "")


def grams(names: Iterable[str]) -> list[str]:
    """Every run of GRAM_MIN to GRAM_MAX Chinese characters in the names, each once."""
    seen: dict[str, None] = {}
    for name in names:
        for run in _CJK_RUN.findall(name):
            for size in range(GRAM_MIN, min(GRAM_MAX, len(run)) + 1):
                for start in range(len(run) - size + 1):
                    seen.setdefault(run[start : start + size])
    return list(seen)


@lru_cache(maxsize=65536)
def _word_syllables(word: str) -> tuple[str, ...]:
    return tuple(
        syllable.translate(_TONELESS) for syllable in _PINYIN.lazy_pinyin(word, style=Style.TONE, errors="ignore")
    )


@lru_cache(maxsize=65536)
def _syllables(run: str) -> tuple[str, ...]:
    # pypinyin reads a run word by word from its phrase dictionary (重庆 chongqing), and reading a word is the slow
    # part: companies are mostly different runs made of the same few thousand words, so each word is read once.
    return tuple(chain.from_iterable(_word_syllables(word) for word in _PINYIN.seg(run)))


def _readings(name: str) -> list[list[str]]:
    """The syllables of a name; a second reading when its first character is a surname read differently."""
    syllables = list(_syllables(name))
    readings = [syllables]
    surname = SURNAME_READINGS.get(name[:1])
    if surname and syllables and syllables[0] != surname:
        readings.append([surname, *syllables[1:]])
    return readings


def pinyin(names: Iterable[str]) -> list[str]:
    """For each Chinese name: spaced pinyin (wang jian guo); for names of up to FULL_PINYIN_MAX characters also
    the full pinyin (wangjianguo) and the initials (wjg). A long company name as one run-together word would
    cost far more to index than anyone gains: people type the short name or its syllables."""
    keys: dict[str, None] = {}
    for name in names:
        for run in _CJK_RUN.findall(name):
            for syllables in _readings(run):
                if not syllables:
                    continue
                keys.setdefault(" ".join(syllables))
                if len(syllables) <= FULL_PINYIN_MAX:
                    keys.setdefault("".join(syllables))
                    if len(syllables) > 1:
                        keys.setdefault("".join(syllable[0] for syllable in syllables))
    return list(keys)


def sort_key(name: str) -> str:
    """Names sort by their pinyin, the way people look them up, not by code point."""
    return _CJK_RUN.sub(lambda run: " ".join(_syllables(run.group())) + " ", name.lower()).strip()


def phone_suffixes(numbers: Iterable[str]) -> list[str]:
    """Each number's digits and their suffixes of PHONE_MIN or more digits. A mainland mobile typed with its
    country code is found because the query drops the code (phone_query): indexing 86… too would add two words
    to every mobile, each found in no other document, which is what indexing time grows with."""
    keys: dict[str, None] = {}
    for number in numbers:
        digits = _NOT_DIGIT.sub("", number)
        for start in range(len(digits) - PHONE_MIN + 1):
            keys.setdefault(digits[start:])
    return list(keys)


def phone_query(query: str) -> str | None:
    """The digits of a query that is a phone number or part of one, else None; without the country code of a
    mainland number typed with it (+86 138-1234 5678, 0086 13812345678, 8613812345678: 13812345678)."""
    query = query.strip()
    if not _PHONE_QUERY.match(query):
        return None
    digits = _NOT_DIGIT.sub("", query)
    if mobile := _MOBILE_WITH_COUNTRY_CODE.match(digits):
        digits = mobile[1]
    elif query.startswith("+86"):
        # A + leaves no doubt: +86 871 6512 3456 is the landline 0871-6512 3456, +86 1381 the start of a mobile.
        digits = digits[2:]
    return digits if len(digits) >= PHONE_MIN else None
