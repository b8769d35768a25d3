"""The duplicate finder: which live customers are probably the same one, and how sure that is.

It never compares every customer with every other. The database groups the customers by each exact key it
stores normalised (mobile, e-mail and WeChat of the customer and of its contacts: GROUP BY … HAVING more than
one customer); names and companies are reduced in memory to a key that ignores legal forms and place prefixes,
and to its pinyin, and grouped the same way. Only customers sharing a group become candidate pairs, and each
candidate pair is then scored on everything the two have in common. A value shared by more than MAX_GROUP
customers (a switchboard number, a group's e-mail, a common name) is no sign of a duplicate: it is reported
instead of paired.
"""

from __future__ import annotations

import functools
import json
import re
import time
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pypinyin import lazy_pinyin

from app.customers.tables import Customer
from app.db import in_chunks, insert_rows, transaction
from app.duplicates.tables import DuplicatePair, DuplicateScan, PairStatus
from app.regions import PROVINCES, short_name

# Customers sharing one value: more than this and the value says nothing about duplicates.
MAX_GROUP = 10
# A pair is stored from this score on: a shared mobile, e-mail or WeChat, or an organisation's name, reaches it
# alone; a person's name needs something more (the same employer, a shared contact).
MIN_SCORE = 40
# The values shared by the most customers, kept to show on the review page.
COMMON_SHOWN = 20
SCAN_ID = 1

# Points per reason. An organisation's name (华信勘测设计) is far more telling than a person's (王芳).
WEIGHTS = {
    "mobile": 60,
    "email": 50,
    "wechat": 50,
    "contact": 40,
    "name": 45,
    "pinyin": 40,
    "person_name": 20,
    "person_pinyin": 10,
    "company": 20,
    "city": 5,
}
# Taken off when the two names open with different places.
DIFFERENT_PLACES = 30

# Legal forms and the words around them that do not tell two organisations apart.
_LEGAL_FORMS = re.compile(r"(?:(?:股份)?有限(?:责任)?公司|股份公司|集团公司|集团|分公司|总公司|公司)+$")
# A place in brackets after the name, as a branch or a list writes it: 华信勘测设计有限公司（昆明）.
_PLACE_IN_BRACKETS = re.compile(r"\(([^()]+)\)$")
_NOT_WORD = re.compile(r"[\W_]+")
_PLACE_SUFFIXES = ("省", "市", "州", "县", "区")


def _places() -> dict[str, tuple[str, str]]:
    """Every province and city name, full and short, → (province, city); a short name both a province and a
    city (吉林) counts as the province."""
    places: dict[str, tuple[str, str]] = {}
    for province in PROVINCES:
        for name in (province, short_name(province)):
            places.setdefault(name, (province, ""))
    for province, cities in PROVINCES.items():
        for city in cities:
            for name in (city, short_name(city)):
                places.setdefault(name, (province, city))
    return places


_PLACES = _places()
_PLACE_LENGTHS = sorted({len(name) for name in _PLACES}, reverse=True)
# Each city → the ways its name is written (昆明市 → 昆明市, 昆明): a city field holds either.
_CITY_SPELLINGS: dict[str, tuple[str, ...]] = {}
for _spelling, (_province, _city) in _PLACES.items():
    if _city:
        _CITY_SPELLINGS[_city] = (*_CITY_SPELLINGS.get(_city, ()), _spelling)


@dataclass(frozen=True, slots=True)
class NameKey:
    """A name as the finder compares it: 云南省昆明市华信勘测设计有限责任公司 → key 华信勘测设计, pinyin
    huaxinkanceshiji, province 云南省, city 昆明市."""

    key: str
    pinyin: str
    province: str
    city: str
    organisation: bool

    def same_place(self, other: NameKey) -> bool:
        """False when the names open with different places: 昆明市自然资源局 and 大理市自然资源局 are two offices."""
        if self.city and other.city and self.city != other.city:
            return False
        return not (self.province and other.province and self.province != other.province)


@functools.cache
def _syllables(character: str) -> str:
    return "".join(lazy_pinyin(character))


def pinyin_of(text: str) -> str:
    """Character by character, cached: the same characters always give the same spelling."""
    return "".join(map(_syllables, text))


@functools.lru_cache(maxsize=200_000)
def name_key(raw: str) -> NameKey:
    """Reduce a customer's or company's name for comparison: full-width to half-width, lower case, no
    punctuation, no legal form (有限公司, 股份有限责任公司, 集团 …), no leading province or city names as long as
    two characters remain, no place in brackets at the end (（昆明）). More eager than the stored
    `Customer.name_key` of the duplicate warning, which keeps three characters: the finder checks the places
    separately (`same_place`)."""
    key, province, city, organisation = _reduced(raw)
    return NameKey(key, pinyin_of(key), province, city, organisation)


@functools.lru_cache(maxsize=200_000)
def _reduced(raw: str) -> tuple[str, str, str, bool]:
    """name_key without the pinyin: key, province, city, organisation."""
    text = unicodedata.normalize("NFKC", raw).lower().strip()
    bracketed = _PLACE_IN_BRACKETS.search(text)
    after = _PLACES.get(_NOT_WORD.sub("", bracketed.group(1))) if bracketed else None
    if bracketed and after is not None:
        text = text[: bracketed.start()]
    text = _NOT_WORD.sub("", text)
    without_form = _LEGAL_FORMS.sub("", text)
    organisation = bool(without_form) and without_form != text
    key = without_form or text
    province = city = ""
    stripped = True
    while stripped:
        stripped = False
        for length in _PLACE_LENGTHS:
            if len(key) - length < 2:
                continue
            place = _PLACES.get(key[:length])
            if place is not None:
                if not city:
                    # The inner place says the province: 云南省遵义市 is 遵义市, and 云南省重庆市 is 重庆市, with
                    # a wrong province before it.
                    province, city = place
                key = key[length:]
                # 大理市 is the short name 大理 and the 市 of a county-level city.
                if key[:1] in _PLACE_SUFFIXES and len(key) > 2:
                    key = key[1:]
                stripped = True
                break
    if after is not None and not province:
        province, city = after
    # Two to three characters without a legal form read as a person's name (王芳, 欧阳明); 北京大学 does not.
    return key, province, city, organisation or len(text) >= 4


@dataclass(slots=True)
class _Customer:
    name: NameKey
    company: NameKey | None
    city: str


Place = tuple[str, str]


def place_of(name: str, province: str = "", city: str = "") -> Place:
    """Where a customer is, as (province, city) spelt as the region list spells them: its province and city
    fields, and where those are empty or not a known place, the place its name opens with (or ends with, in
    brackets). ("", "") when nothing says."""
    known = _PLACES.get(city) if city else None
    if known is not None and known[1]:
        return province or known[0], known[1]
    _key, named_province, named_city, _organisation = _reduced(name)
    return province or (known[0] if known else "") or named_province, named_city


def place_of_record(record: dict[str, str]) -> Place:
    """`place_of` a customer row that has its name, province and city."""
    return place_of(record["name"], record["province"], record["city"])


def elsewhere(one: Place, other: Place) -> bool:
    """True when two places cannot be one: two different cities, or two different provinces."""
    return bool(one[1] and other[1] and one[1] != other[1]) or bool(one[0] and other[0] and one[0] != other[0])


def city_spellings(city: str) -> tuple[str, ...]:
    """The ways a city field may hold this city (from `place_of`): 昆明市 and 昆明."""
    return _CITY_SPELLINGS.get(city, (city,) if city else ())


@dataclass
class ScanResult:
    customers: int = 0
    pairs: int = 0
    seconds: float = 0.0
    common: list[dict[str, object]] = field(default_factory=list)


@dataclass
class Candidate:
    a: int
    b: int
    score: int
    reasons: list[str]


# The exact keys, grouped by the database: each (reason, value) with the customers having it, of those values
# more than one customer has. `via_contact` is 1 when it is a contact's value rather than the customer's own.
_SHARED_VALUES = """
WITH keyed AS (
    SELECT 'mobile' AS reason, mobile AS value, id AS customer_id, 0 AS via_contact
      FROM customer WHERE deleted_at IS NULL AND mobile <> ''
    UNION ALL
    SELECT 'email', email, id, 0 FROM customer WHERE deleted_at IS NULL AND email <> ''
    UNION ALL
    SELECT 'wechat', wechat, id, 0 FROM customer WHERE deleted_at IS NULL AND wechat <> ''
    UNION ALL
    SELECT 'mobile', contact.mobile, contact.customer, 1
      FROM contact JOIN customer ON customer.id = contact.customer
     WHERE contact.deleted_at IS NULL AND customer.deleted_at IS NULL AND contact.mobile <> ''
    UNION ALL
    SELECT 'email', contact.email, contact.customer, 1
      FROM contact JOIN customer ON customer.id = contact.customer
     WHERE contact.deleted_at IS NULL AND customer.deleted_at IS NULL AND contact.email <> ''
    UNION ALL
    SELECT 'wechat', contact.wechat, contact.customer, 1
      FROM contact JOIN customer ON customer.id = contact.customer
     WHERE contact.deleted_at IS NULL AND customer.deleted_at IS NULL AND contact.wechat <> ''
), shared AS (
    SELECT reason, value, COUNT(DISTINCT customer_id) AS customers
      FROM keyed GROUP BY reason, value HAVING COUNT(DISTINCT customer_id) > 1
)
SELECT keyed.reason, keyed.value, keyed.customer_id, keyed.via_contact, shared.customers
  FROM keyed JOIN shared ON shared.reason = keyed.reason AND shared.value = keyed.value
"""


def _pairs(ids: Iterable[int]) -> Iterable[tuple[int, int]]:
    ordered = sorted(set(ids))
    for index, first in enumerate(ordered):
        for second in ordered[index + 1 :]:
            yield first, second


class _Common:
    """Values too widely shared to pair their customers, the largest kept."""

    def __init__(self) -> None:
        self.found: list[dict[str, object]] = []

    def add(self, reason: str, value: str, customers: int) -> None:
        self.found.append({"reason": reason, "value": value, "customers": customers})

    def largest(self) -> list[dict[str, object]]:
        return sorted(self.found, key=lambda item: (-int(str(item["customers"])), str(item["value"])))[:COMMON_SHOWN]


async def _shared_values(common: _Common) -> dict[tuple[int, int], set[str]]:
    """Candidate pairs from the exact keys, with the reasons: 'mobile', 'email', 'wechat' when both customers
    have the value themselves, 'contact' when one of them has it through a contact."""
    groups: dict[tuple[str, str], dict[int, bool]] = defaultdict(dict)
    sizes: dict[tuple[str, str], int] = {}
    for row in await Customer.raw(_SHARED_VALUES):
        group = (row["reason"], row["value"])
        sizes[group] = row["customers"]
        if row["customers"] > MAX_GROUP:
            continue
        own = not row["via_contact"]
        members = groups[group]
        members[row["customer_id"]] = members.get(row["customer_id"], False) or own
    for (reason, value), customers in sizes.items():
        if customers > MAX_GROUP:
            common.add(reason, value, customers)
    found: dict[tuple[int, int], set[str]] = defaultdict(set)
    for (reason, _value), members in groups.items():
        for pair in _pairs(members):
            found[pair].add(reason if members[pair[0]] and members[pair[1]] else "contact")
    return found


async def _customers() -> dict[int, _Customer]:
    rows = await Customer.raw("SELECT id, name, company, city FROM customer WHERE deleted_at IS NULL")
    customers = {}
    for row in rows:
        company = row["company"]
        customers[row["id"]] = _Customer(name_key(row["name"]), name_key(company) if company else None, row["city"])
    return customers


def _name_groups(customers: dict[int, _Customer], common: _Common) -> set[tuple[int, int]]:
    """Candidate pairs from names: organisations by name key and by its pinyin; people by name and employer
    together, since two people of the same name are usually two people."""
    blocks: dict[tuple[str, str], list[int]] = defaultdict(list)
    for customer_id, customer in customers.items():
        name = customer.name
        if len(name.key) < 2:
            continue
        if name.organisation:
            blocks["name", name.key].append(customer_id)
            if name.province:
                # When a short key is too common (大学), the same key in the same place still pairs (北京大学).
                blocks["name", f"{name.province}{name.city} {name.key}"].append(customer_id)
            if len(name.pinyin) >= 4:
                blocks["pinyin", name.pinyin].append(customer_id)
        elif customer.company is not None and len(customer.company.key) >= 2:
            blocks["person", f"{name.key} · {customer.company.key}"].append(customer_id)
    found: set[tuple[int, int]] = set()
    for (reason, value), ids in blocks.items():
        if len(ids) > MAX_GROUP:
            common.add(reason, value, len(ids))
        elif len(ids) > 1:
            found.update(_pairs(ids))
    return found


def score(first: _Customer, second: _Customer, shared: set[str]) -> tuple[int, list[str]]:
    """How sure the pair is a duplicate (up to 100), and why: the shared values, then what the two records say."""
    reasons = set(shared)
    a, b = first.name, second.name
    # Two offices named for different cities (昆明市农业农村局, 宜宾市农业农村局) are two customers, even when
    # they share a mailbox or a consultant's mobile.
    penalty = 0 if a.same_place(b) else DIFFERENT_PLACES
    if not penalty:
        person = not (a.organisation or b.organisation)
        if a.key == b.key and len(a.key) >= 2:
            reasons.add("person_name" if person else "name")
        elif a.pinyin == b.pinyin and a.pinyin:
            reasons.add("person_pinyin" if person else "pinyin")
    one, other = first.company, second.company
    if one and other and one.key == other.key and len(one.key) >= 2 and one.same_place(other):
        reasons.add("company")
    if first.city and first.city == second.city:
        reasons.add("city")
    ordered = sorted(reasons, key=lambda reason: (-WEIGHTS[reason], reason))
    return max(0, min(100, sum(WEIGHTS[reason] for reason in ordered) - penalty)), ordered


async def find_candidates() -> tuple[list[Candidate], int, list[dict[str, object]]]:
    """Every pair of live customers scoring MIN_SCORE or more, the best first; the number of customers looked
    at; the values too widely shared to count."""
    common = _Common()
    shared = await _shared_values(common)
    customers = await _customers()
    pairs = set(shared) | _name_groups(customers, common)
    candidates = []
    for first_id, second_id in pairs:
        first, second = customers.get(first_id), customers.get(second_id)
        if first is None or second is None:
            continue
        points, reasons = score(first, second, shared.get((first_id, second_id), set()))
        if points >= MIN_SCORE:
            candidates.append(Candidate(first_id, second_id, points, reasons))
    candidates.sort(key=lambda candidate: (-candidate.score, candidate.a, candidate.b))
    return candidates, len(customers), common.largest()


async def scan() -> ScanResult:
    """Scan the whole database and bring the stored pairs in step with what it finds now: a pair found again
    keeps its id (a supervisor may have it open), new pairs are added, open pairs no longer found go; a pair
    someone dismissed (or merged) keeps its verdict and is not brought back."""
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    await ensure_scan_row()
    candidates, customers, common = await find_candidates()
    async with transaction():
        stored = {
            (row["customer_a"], row["customer_b"]): row
            for row in await DuplicatePair.select(
                DuplicatePair.id,
                DuplicatePair.customer_a,
                DuplicatePair.customer_b,
                DuplicatePair.score,
                DuplicatePair.reasons,
                DuplicatePair.status,
            ).output(load_json=True)
        }
        found = {(candidate.a, candidate.b): candidate for candidate in candidates}
        gone = [row["id"] for key, row in stored.items() if row["status"] == PairStatus.open and key not in found]
        for chunk in in_chunks(gone):
            await DuplicatePair.delete().where(DuplicatePair.id.is_in(chunk))
        for key, candidate in found.items():
            row = stored.get(key)
            changed = row is not None and (row["score"], row["reasons"]) != (candidate.score, candidate.reasons)
            if changed and row["status"] == PairStatus.open:
                await DuplicatePair.update(
                    {DuplicatePair.score: candidate.score, DuplicatePair.reasons: candidate.reasons}
                ).where(DuplicatePair.id == row["id"])
        fresh = [candidate for key, candidate in found.items() if key not in stored]
        now = datetime.now(UTC)
        await insert_rows(
            DuplicatePair,
            [
                {
                    "customer_a": candidate.a,
                    "customer_b": candidate.b,
                    "score": candidate.score,
                    "reasons": json.dumps(candidate.reasons, ensure_ascii=False),
                    "status": PairStatus.open.value,
                    "found_at": now,
                }
                for candidate in fresh
            ],
        )
        open_pairs = sum(1 for key in found if key not in stored or stored[key]["status"] == PairStatus.open)
        seconds = time.perf_counter() - started
        await DuplicateScan.update(
            {
                DuplicateScan.started_at: started_at,
                DuplicateScan.finished_at: datetime.now(UTC),
                DuplicateScan.customers: customers,
                DuplicateScan.pairs: open_pairs,
                DuplicateScan.milliseconds: round(seconds * 1000),
                DuplicateScan.common: common,
            }
        ).where(DuplicateScan.id == SCAN_ID)
    return ScanResult(customers=customers, pairs=open_pairs, seconds=seconds, common=common)


async def ensure_scan_row() -> None:
    """The one scan row, made on first use; a fixed id lets two first uses at once agree on it."""
    await DuplicateScan.raw(
        "INSERT INTO duplicate_scan (id, customers, pairs, milliseconds, common) VALUES ({}, 0, 0, 0, '[]') "
        "ON CONFLICT (id) DO NOTHING",
        SCAN_ID,
    )
