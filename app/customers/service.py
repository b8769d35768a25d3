"""Customers: the permission scope, the list with its filters, the field rules, and every write to a customer,
its contacts and its projects — each write in one transaction with its audit and search outbox rows."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode

from piccolo.columns.combination import And, Or, Where, WhereRaw
from piccolo.query.functions.aggregate import Sum
from piccolo.query.methods.select import Select

from app.accounts.service import CurrentUser
from app.accounts.tables import Account
from app.config import get_settings
from app.core import service as core
from app.customers import normalize
from app.customers.tables import (
    Contact,
    Customer,
    Kind,
    Origin,
    Project,
    ProjectStatus,
    SavedFilter,
    Segment,
    Tier,
)
from app.db import Prepared, in_chunks, is_sqlite, transaction
from app.duplicates import finder
from app.followups.tables import FollowUp
from app.i18n import SHANGHAI, _
from app.options.service import valid_option_id
from app.options.tables import OptionKind
from app.regions import PROVINCES, normalise_city, normalise_province
from search import engine as search_engine
from search import query as search_query

PAGE_SIZE = 25


class NotVisible(LookupError):
    """The record does not exist, is deleted, or is outside the user's scope: the route answers 404."""


class FormErrors(ValueError):
    """Validation failed; `errors` maps each field to the message shown beside it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


# ---------------------------------------------------------------------------------------------------------
# Scope


def visible_customers(user: CurrentUser, *, include_deleted: bool = False) -> Where | And | Or:
    """The one permission scope: staff see their own customers and the public pool; supervisors see all."""
    return _visible(user.is_supervisor, user.account_id, include_deleted)


def _visible(supervisor: bool, account_id: Any, include_deleted: bool) -> Where | And | Or:
    live = Customer.deleted_at.is_not_null() if include_deleted else Customer.deleted_at.is_null()
    if supervisor:
        return live
    return live & ((Customer.owner == account_id) | Customer.owner.is_null())


def search_scope(user: CurrentUser) -> str:
    """The same scope as a Meilisearch filter, for every search index (each document carries owner_id)."""
    if user.is_supervisor:
        return ""
    return f"owner_id IS NULL OR owner_id = {int(user.account_id)}"


async def check_visible(user: CurrentUser, customer_id: int) -> None:
    if not await Customer.exists().where(Customer.id == customer_id, visible_customers(user)):
        raise NotVisible(customer_id)


# ---------------------------------------------------------------------------------------------------------
# Fields: what each editable field accepts


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: Callable[[], str]
    widget: str = "text"  # text | textarea | email | tel | select | province | city | option
    max_length: int = 200
    required: bool = False
    option_kind: OptionKind | None = None
    supervisor_only: bool = False


FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in [
        FieldSpec("name", lambda: _("Name"), required=True),
        FieldSpec("company", lambda: _("Company")),
        FieldSpec("title", lambda: _("Title"), max_length=100),
        FieldSpec("mobile", lambda: _("Mobile"), widget="tel", max_length=30),
        FieldSpec("phone", lambda: _("Landline"), widget="tel", max_length=40),
        FieldSpec("email", lambda: _("Email"), widget="email"),
        FieldSpec("wechat", lambda: _("WeChat"), max_length=100),
        FieldSpec("province", lambda: _("Province"), widget="province", max_length=20),
        FieldSpec("city", lambda: _("City"), widget="city", max_length=40),
        FieldSpec("address", lambda: _("Address"), max_length=300),
        FieldSpec("origin", lambda: _("Origin"), widget="select"),
        FieldSpec("industry", lambda: _("Industry"), widget="option", option_kind=OptionKind.industry),
        FieldSpec(
            "source_channel",
            lambda: _("Source channel"),
            widget="option",
            option_kind=OptionKind.source_channel,
        ),
        FieldSpec("utm_source", lambda: _("Campaign source"), max_length=200),
        FieldSpec("utm_medium", lambda: _("Campaign medium"), max_length=200),
        FieldSpec("utm_campaign", lambda: _("Campaign"), max_length=200),
        FieldSpec("budget_band", lambda: _("Budget band"), widget="option", option_kind=OptionKind.budget_band),
        FieldSpec("needs", lambda: _("Needs"), widget="textarea", max_length=5000),
        FieldSpec("characteristics", lambda: _("Characteristics"), widget="textarea", max_length=5000),
        FieldSpec("consumption_habits", lambda: _("Consumption habits"), widget="textarea", max_length=5000),
        FieldSpec("value_tier", lambda: _("Value tier"), widget="select", supervisor_only=True),
    ]
}

# The fields a new-customer form asks for, in order.
NEW_CUSTOMER_FIELDS = [
    "name",
    "company",
    "title",
    "mobile",
    "phone",
    "email",
    "wechat",
    "province",
    "city",
    "address",
    "origin",
    "industry",
    "source_channel",
    "budget_band",
    "needs",
    "characteristics",
]


def choices(field_name: str) -> list[tuple[str, str]]:
    """(value, label) pairs for the fixed-choice fields."""
    from app.labels import label

    if field_name == "origin":
        return [(origin.value, label(origin)) for origin in Origin]
    if field_name == "value_tier":
        return [("", _("Automatic"))] + [(tier.value, label(tier)) for tier in Tier]
    if field_name == "province":
        return [(province, province) for province in PROVINCES]
    return []


async def clean_field(field_name: str, raw: str, *, province: str = "") -> Any:
    """The value to store for what the user typed, or ValueError with the message to show beside the field."""
    spec = FIELDS[field_name]
    value = normalize.clean_text(raw) if spec.widget != "textarea" else raw.replace("\r\n", "\n").strip()
    if spec.required and not value:
        raise ValueError(_("This field is required."))
    if len(value) > spec.max_length:
        raise ValueError(_("At most %(n)s characters.", n=spec.max_length))
    if field_name == "mobile":
        try:
            return normalize.normalise_mobile(value)
        except ValueError:
            raise ValueError(_("Enter a valid mobile number, e.g. 138 1234 5678.")) from None
    if field_name == "phone":
        if value and not 7 <= len(normalize.phone_digits(value)) <= 20:
            raise ValueError(_("Enter a valid phone number, e.g. 0871-6512 3456."))
        return value
    if field_name == "email":
        value = normalize.normalise_email(value)
        if value and not normalize.EMAIL.match(value):
            raise ValueError(_("Enter a valid email address."))
        return value
    if field_name == "wechat":
        return normalize.normalise_wechat(value)
    if field_name == "province":
        try:
            return normalise_province(value)
        except ValueError:
            raise ValueError(_("Choose a province from the list.")) from None
    if field_name == "city":
        return normalise_city(province, value)
    if field_name == "origin":
        if value not in {origin.value for origin in Origin}:
            raise ValueError(_("Choose own or external data."))
        return value
    if field_name == "value_tier":
        if value and value not in {tier.value for tier in Tier}:
            raise ValueError(_("Choose A, B, C or automatic."))
        return value or None
    if spec.option_kind is not None:
        try:
            return await valid_option_id(spec.option_kind, value)
        except ValueError:
            raise ValueError(_("Choose an entry from the list.")) from None
    return value


# ---------------------------------------------------------------------------------------------------------
# Reading


_LIST_COLUMNS = (
    Customer.id,
    Customer.name,
    Customer.kind,
    Customer.origin,
    Customer.company,
    Customer.mobile,
    Customer.province,
    Customer.city,
    Customer.value_tier,
    Customer.owner,
    Customer.owner.name.as_alias("owner_name"),
    Customer.source_channel.label.as_alias("channel_label"),
    Customer.source_channel.label_en.as_alias("channel_label_en"),
    Customer.utm_source,
    Customer.last_contact_at,
    Customer.next_follow_up_at,
    Customer.updated_at,
    Customer.created_at,
)

SORTS: dict[str, tuple[Any, bool]] = {
    "updated": (Customer.updated_at, False),
    "created": (Customer.created_at, False),
    "name": (Customer.name, True),
    "last_contact": (Customer.last_contact_at, False),
    "next_follow_up": (Customer.next_follow_up_at, True),
}


def _int_or_none(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() and len(value) < 10 else None


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _day_or_none(value: str) -> date | None:
    """A YYYY-MM-DD date input's value; None for anything else. A year before 1990 bounds nothing (Kehu holds
    nothing entered then), and one near 9999 would overflow the day after."""
    if not _DAY.fullmatch(value):
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    return day if 1990 <= day.year <= 9000 else None


def shanghai_midnight(day: date) -> datetime:
    """The moment (in UTC) a calendar day begins in Asia/Shanghai: the list's dates are the users' days."""
    return datetime.combine(day, time(), tzinfo=SHANGHAI).astimezone(UTC)


@dataclass(frozen=True)
class CustomerFilters:
    """What the customer list shows; read from and written back to the URL so links and Back work."""

    kind: str = Kind.prospect.value
    q: str = ""
    owner: str = ""  # "" all visible | "me" | "pool" | an account id
    province: str = ""
    city: str = ""
    channel: int | None = None
    tier: str = ""
    origin: str = ""
    activity: str = ""  # "" | "active" | "inactive"
    budget: int | None = None
    industry: int | None = None
    segment: str = ""  # "" | a Segment value
    # The first-touch campaign, as the analysis links to it (exact values).
    utm_source: str = ""
    utm_campaign: str = ""
    # Entered between these days (inclusive), Asia/Shanghai days.
    created_from: date | None = None
    created_to: date | None = None
    sort: str = "updated"
    page: int = 1

    @classmethod
    def from_query(cls, params: dict[str, str]) -> CustomerFilters:
        """Unknown or malformed values are dropped, never an error: a hand-edited URL still shows a list."""
        get = lambda key: (params.get(key) or "").strip()  # noqa: E731
        owner = get("owner")
        if owner not in ("me", "pool") and _int_or_none(owner) is None:
            owner = ""
        province = get("province")
        if province and province not in PROVINCES:
            try:
                province = normalise_province(province)
            except ValueError:
                province = ""
        page = _int_or_none(get("page")) or 1
        created_from, created_to = _day_or_none(get("created_from")), _day_or_none(get("created_to"))
        if created_from and created_to and created_from > created_to:
            created_from, created_to = created_to, created_from
        return cls(
            kind=get("kind") if get("kind") in {k.value for k in Kind} else Kind.prospect.value,
            q=normalize.clean_text(get("q"))[:100],
            owner=owner,
            province=province,
            city=get("city")[:40],
            channel=_int_or_none(get("channel")),
            tier=get("tier") if get("tier") in {t.value for t in Tier} else "",
            origin=get("origin") if get("origin") in {o.value for o in Origin} else "",
            activity=get("activity") if get("activity") in ("active", "inactive") else "",
            budget=_int_or_none(get("budget")),
            industry=_int_or_none(get("industry")),
            segment=get("segment") if get("segment") in {segment.value for segment in Segment} else "",
            utm_source=normalize.clean_text(get("utm_source"))[:200],
            utm_campaign=normalize.clean_text(get("utm_campaign"))[:200],
            created_from=created_from,
            created_to=created_to,
            sort=get("sort") if get("sort") in SORTS else "updated",
            page=max(1, min(page, 100_000)),
        )

    def query(self, **changes: Any) -> str:
        """The URL query for these filters with some changed; defaults are left out to keep links short."""
        values = {key: changes.get(key, getattr(self, key)) for key in _QUERY_KEYS}
        return urlencode(
            {
                key: value
                for key, value in values.items()
                if value not in (None, "") and (key == "kind" or value != getattr(_DEFAULT_FILTERS, key))
            }
        )

    @property
    def is_filtered(self) -> bool:
        return any(
            (
                self.q,
                self.owner,
                self.province,
                self.city,
                self.channel,
                self.tier,
                self.origin,
                self.activity,
                self.budget,
                self.industry,
                self.segment,
                self.utm_source,
                self.utm_campaign,
                self.created_from,
                self.created_to,
            )
        )

    @property
    def created_since(self) -> datetime | None:
        """Where the date range begins, in UTC: the start of `created_from` in Shanghai."""
        return shanghai_midnight(self.created_from) if self.created_from else None

    @property
    def created_before(self) -> datetime | None:
        """Where the date range ends (exclusive), in UTC: the start of the day after `created_to` in Shanghai."""
        return shanghai_midnight(self.created_to + timedelta(days=1)) if self.created_to else None


def _owner_parts(user: CurrentUser, filters: CustomerFilters) -> list[Any]:
    """The owner side of scope and filter as disjoint conditions that are each one index range.

    Staff see their own customers or the pool: counted as two ranges and added up, because SQLite scans the
    whole table for `owner = ? OR owner IS NULL`.
    """
    mine = Customer.owner == user.account_id
    pool = Customer.owner.is_null()
    if filters.owner == "me":
        return [mine]
    if filters.owner == "pool":
        return [pool]
    if filters.owner:
        owner_id = int(filters.owner)
        if user.is_supervisor or owner_id == user.account_id:
            return [Customer.owner == owner_id]
        return []
    return [None] if user.is_supervisor else [mine, pool]


_LIKE_SPECIAL = re.compile(r"([\\%_])")
# What people put between the digits of a landline: 0871-6512 3456, (0871) 65123456, +86.871.…
_PHONE_SEPARATORS = ("-", " ", "(", ")", ".", "+")
PHONE_DIGITS_MIN = 4


def _contains(column_sql: str, needle: str) -> WhereRaw:
    """column contains needle, % and _ taken literally; ignoring case (SQLite's LIKE does, for Latin letters)."""
    operator = "LIKE" if is_sqlite() else "ILIKE"
    pattern = "%" + _LIKE_SPECIAL.sub(r"\\\1", needle) + "%"
    return WhereRaw(f"{column_sql} {operator} {{}} ESCAPE '\\'", pattern)


def _digits_only(column_sql: str) -> str:
    for separator in _PHONE_SEPARATORS:
        column_sql = f"REPLACE({column_sql}, '{separator}', '')"
    return column_sql


def text_matches(query: str) -> Any:
    """Customers whose name, company or email contains the text, or whose mobile or landline contains its
    digits (4 or more): the database's own text search, used while the search index is unreachable."""
    table = f'"{Customer._meta.tablename}"'
    matches = _contains(f"{table}.name", query) | _contains(f"{table}.company", query)
    matches = matches | _contains(f"{table}.email", query)
    digits = re.sub(r"\D", "", query)
    if len(digits) >= PHONE_DIGITS_MIN:
        matches = matches | _contains(f"{table}.mobile", digits) | _contains(_digits_only(f"{table}.phone"), digits)
    return matches


def _active_since() -> datetime:
    return datetime.now(UTC) - timedelta(days=get_settings().active_days)


def _field_clauses(filters: CustomerFilters) -> list[Any]:
    """Everything the filters ask for except owner and activity."""
    clauses: list[Any] = [Customer.deleted_at.is_null()]
    if filters.q:
        clauses.append(text_matches(filters.q))
    if filters.province:
        clauses.append(Customer.province == filters.province)
    if filters.city:
        clauses.append(Customer.city == filters.city)
    if filters.channel:
        clauses.append(Customer.source_channel == filters.channel)
    if filters.tier:
        clauses.append(Customer.value_tier == filters.tier)
    if filters.origin:
        clauses.append(Customer.origin == filters.origin)
    if filters.budget:
        clauses.append(Customer.budget_band == filters.budget)
    if filters.industry:
        clauses.append(Customer.industry == filters.industry)
    if filters.segment:
        clauses.append(Customer.rfm_segment == filters.segment)
    if filters.utm_source:
        clauses.append(Customer.utm_source == filters.utm_source)
    if filters.utm_campaign:
        clauses.append(Customer.utm_campaign == filters.utm_campaign)
    if filters.created_since:
        clauses.append(Customer.created_at >= filters.created_since)
    if filters.created_before:
        clauses.append(Customer.created_at < filters.created_before)
    return clauses


def _activity_clause(filters: CustomerFilters) -> Any:
    since = _active_since()
    if filters.activity == "active":
        return Customer.last_contact_at >= since
    if filters.activity == "inactive":
        return Customer.last_contact_at.is_null() | (Customer.last_contact_at < since)
    return None


def _page_clauses(user: CurrentUser, filters: CustomerFilters) -> list[Any]:
    clauses = [*_field_clauses(filters), visible_customers(user)]
    parts = _owner_parts(user, filters)
    if not parts:
        clauses.append(Customer.id < 0)
    elif parts != [None] and filters.owner:
        clauses.append(parts[0])
    if (activity := _activity_clause(filters)) is not None:
        clauses.append(activity)
    return clauses


# What a list's URL carries, in this order (a date is written as its str(), YYYY-MM-DD, what from_query reads).
_QUERY_KEYS = (
    "kind",
    "q",
    "owner",
    "province",
    "city",
    "channel",
    "tier",
    "origin",
    "activity",
    "budget",
    "industry",
    "segment",
    "utm_source",
    "utm_campaign",
    "created_from",
    "created_to",
    "sort",
    "page",
)
_DEFAULT_FILTERS = CustomerFilters()


def _tally_owners(user: CurrentUser, filters: CustomerFilters) -> list[int] | None:
    """The owners (0: the pool) whose tallies add up to the list's scope and owner filter; None for all."""
    if filters.owner == "me":
        return [user.account_id]
    if filters.owner == "pool":
        return [0]
    if filters.owner:
        owner_id = int(filters.owner)
        return [owner_id] if user.is_supervisor or owner_id == user.account_id else []
    return None if user.is_supervisor else [user.account_id, 0]


async def _tab_sizes(user: CurrentUser, filters: CustomerFilters) -> dict[str, int]:
    """The size of each tab of an unfiltered list, from the tallies the database keeps per owner and kind (see
    the customer_tally migration) instead of counting the rows."""
    owners = _tally_owners(user, filters)
    if owners == []:
        return {kind.value: 0 for kind in Kind}
    sql = "SELECT kind, SUM(live) AS live FROM customer_tally"
    if owners is not None:
        sql += " WHERE owner IN (" + ", ".join("{}" for _ in owners) + ")"
    rows = await Customer.raw(sql + " GROUP BY kind", *(owners or []))
    sizes = {row["kind"]: int(row["live"]) for row in rows}
    return {kind.value: sizes.get(kind.value, 0) for kind in Kind}


async def _count(filters: CustomerFilters, user: CurrentUser, kind: str) -> int:
    """How many customers of one tab match, as a sum of index-friendly counts."""
    total = 0
    for part in _owner_parts(user, filters):
        clauses = [*_field_clauses(filters), Customer.kind == kind]
        if part is not None:
            clauses.append(part)
        if filters.activity:
            # Inactive = all − active: the active range is one index range, "null or older" is not.
            active = await Customer.count().where(*clauses, Customer.last_contact_at >= _active_since())
            total += active if filters.activity == "active" else await Customer.count().where(*clauses) - active
        else:
            total += await Customer.count().where(*clauses)
    return total


@dataclass
class CustomerPage:
    rows: list[dict[str, Any]]
    counts: dict[str, int]
    filters: CustomerFilters
    total: int = 0
    pages: int = 1
    page_numbers: list[int] = field(default_factory=list)
    # Per filter group, how many customers each value would give ({"province": {"云南省": 12}}); empty when
    # the list came from the database.
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    # Per filter group, how many customers match the other filters: what "All" in its select would give.
    facet_totals: dict[str, int] = field(default_factory=dict)
    # Search is unreachable: a text query only matched names, companies and phone numbers in the database.
    limited: bool = False

    def facet_count(self, group: str, value: object = "") -> int | None:
        """How many customers choosing this value in a filter's select would show ("" is the select's "All"),
        under every other filter; None when the list came from the database, which counts no facets.

        The owner group's "pool" is what the owners' counts leave of the group's total: having no owner is no
        facet value."""
        if group not in self.facet_totals:
            return None
        total = self.facet_totals[group]
        counts = self.facets.get(group, {})
        if value in ("", None):
            return total
        if group == "owner_id" and value == "pool":
            return total - sum(counts.values())
        return counts.get(str(value), 0)


def _page_numbers(page: int, pages: int) -> list[int]:
    """First, last and the pages around the current one; 0 marks a gap."""
    shown = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    numbers: list[int] = []
    for number in shown:
        if numbers and number - numbers[-1] > 1:
            numbers.append(0)
        numbers.append(number)
    return numbers


async def list_customers(user: CurrentUser, filters: CustomerFilters) -> CustomerPage:
    """One page of a tab with the count of each tab. A text query or a filter is answered by the search index
    (with facet counts); the plain list, or any list while search is unreachable, by the database."""
    if filters.is_filtered:
        try:
            return await _list_from_index(user, filters)
        except search_engine.Unavailable:
            return replace(await _list_from_database(user, filters), limited=bool(filters.q))
    return await _list_from_database(user, filters)


async def _list_from_database(user: CurrentUser, filters: CustomerFilters) -> CustomerPage:
    """A few index-only counts and one page query; no query per row."""
    # No filter on the customers but their owner (the first clause is always "not deleted"): the tallies hold
    # the answer. Anything else is counted.
    only_owner = len(_field_clauses(filters)) == 1 and not filters.activity
    if only_owner:
        counts = await _tab_sizes(user, filters)
    else:
        counts = {kind.value: await _count(filters, user, kind.value) for kind in Kind}
    clauses = _page_clauses(user, filters)
    total = counts.get(filters.kind, 0)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(filters.page, pages)
    column, ascending = SORTS[filters.sort]
    rows = (
        await Customer.select(*_LIST_COLUMNS)
        .where(*clauses, Customer.kind == filters.kind)
        .order_by(column, ascending=ascending)
        .order_by(Customer.id, ascending=ascending)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    )
    return _page(rows, counts, filters, page, total)


def _page(
    rows: list[dict[str, Any]], counts: dict[str, int], filters: CustomerFilters, page: int, total: int, **more: Any
) -> CustomerPage:
    for row in rows:
        row["mobile_display"] = normalize.format_mobile(row["mobile"])
    pages = max(1, math.ceil(total / PAGE_SIZE))
    return CustomerPage(
        rows=rows,
        counts=counts,
        filters=replace(filters, page=page),
        total=total,
        pages=pages,
        page_numbers=_page_numbers(page, pages),
        **more,
    )


_INDEX_SORTS = {
    "updated": ["updated_ts:desc"],
    "created": ["created_ts:desc"],
    "name": ["name_sort:asc"],
    "last_contact": ["last_contact_ts:desc"],
    "next_follow_up": ["next_follow_up_ts:asc"],
}


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _index_filters(user: CurrentUser, filters: CustomerFilters) -> tuple[dict[str, str], list[str]] | None:
    """The filters as Meilisearch filter strings: one per facet group, plus those that are no group.
    None when the filters cannot match anything in the user's scope."""
    groups = {"kind": f"kind = {_quoted(filters.kind)}"}
    if filters.owner == "me":
        groups["owner_id"] = f"owner_id = {int(user.account_id)}"
    elif filters.owner == "pool":
        groups["owner_id"] = "owner_id IS NULL"
    elif filters.owner:
        if not (user.is_supervisor or int(filters.owner) == user.account_id):
            return None
        groups["owner_id"] = f"owner_id = {int(filters.owner)}"
    for group, value in (
        ("province", filters.province),
        ("city", filters.city),
        ("tier", filters.tier),
        ("origin", filters.origin),
        ("segment", filters.segment),
    ):
        if value:
            groups[group] = f"{group} = {_quoted(value)}"
    for group, number in (
        ("channel_id", filters.channel),
        ("budget_id", filters.budget),
        ("industry_id", filters.industry),
    ):
        if number:
            groups[group] = f"{group} = {int(number)}"
    others = []
    if filters.activity:
        since = int(_active_since().timestamp())
        others.append(f"last_contact_ts {'>=' if filters.activity == 'active' else '<'} {since}")
    for name, value in (("utm_source", filters.utm_source), ("utm_campaign", filters.utm_campaign)):
        if value:
            others.append(f"{name} = {_quoted(value)}")
    # Whole seconds both sides: a document's created_ts is its created_at rounded down.
    if filters.created_since:
        others.append(f"created_ts >= {int(filters.created_since.timestamp())}")
    if filters.created_before:
        others.append(f"created_ts < {int(filters.created_before.timestamp())}")
    return groups, others


def _index_scope(user: CurrentUser, filters: CustomerFilters) -> tuple[dict[str, str], str] | None:
    """The filters as Meilisearch filter strings per facet group, and the user's scope with the filters that are
    no group as one; None when the filters cannot match anything in the user's scope."""
    prepared = _index_filters(user, filters)
    if prepared is None:
        return None
    groups, others = prepared
    return groups, " AND ".join(f"({part})" for part in [search_scope(user), *others] if part)


def _by_id_in_scope(supervisor: bool) -> Prepared[Select]:
    """The list's columns of up to a page of customers by id, in a scope: the ids are PAGE_SIZE parameters."""
    names = [f"id{index}" for index in range(PAGE_SIZE)]

    def build(account_id: Any, **ids: Any) -> Select:
        return Customer.select(*_LIST_COLUMNS).where(
            Customer.id.is_in([ids[name] for name in names]), _visible(supervisor, account_id, False)
        )

    return Prepared(build, parameters=["account_id", *names])


# A page of the filtered list reads its rows by id on every request: its SQL is generated once.
_BY_ID_ALL, _BY_ID_VISIBLE = _by_id_in_scope(True), _by_id_in_scope(False)


async def _listed_by_id(user: CurrentUser, ids: list[int]) -> list[dict[str, Any]]:
    """The list's columns of these customers (at most a page) that are in the user's scope, in any order."""
    if len(ids) > PAGE_SIZE:
        raise ValueError(f"at most {PAGE_SIZE} ids, not {len(ids)}")
    # Unused places repeat an id already asked for.
    values = {f"id{index}": ids[min(index, len(ids) - 1)] for index in range(PAGE_SIZE)}
    prepared = _BY_ID_ALL if user.is_supervisor else _BY_ID_VISIBLE
    return await prepared(account_id=user.account_id, **values)


async def _list_from_index(user: CurrentUser, filters: CustomerFilters) -> CustomerPage:
    """Meilisearch picks the page and counts; the rows themselves are read from the database by id, so what
    is shown is current and inside the scope even if the index lags a moment behind."""
    prepared = _index_scope(user, filters)
    if prepared is None:
        return _page([], {kind.value: 0 for kind in Kind}, filters, 1, 0)
    groups, scope = prepared
    page = min(filters.page, max(1, math.ceil(1_000_000 / PAGE_SIZE)))
    results = await search_engine.call(
        search_query.customer_page,
        filters.q,
        scope,
        groups,
        sort=_INDEX_SORTS[filters.sort],
        page=page,
        per_page=PAGE_SIZE,
    )
    if results.ids:
        by_id = {row["id"]: row for row in await _listed_by_id(user, results.ids)}
        rows = [by_id[customer_id] for customer_id in results.ids if customer_id in by_id]
    else:
        rows = []
    for row in rows:
        row["highlight"] = results.highlights.get(row["id"], {})
    kinds = results.facets.get("kind", {})
    counts = {kind.value: kinds.get(kind.value, 0) for kind in Kind}
    pages = max(1, math.ceil(results.total / PAGE_SIZE))
    if page > pages and results.total:
        return await _list_from_index(user, replace(filters, page=pages))
    return _page(rows, counts, filters, page, results.total, facets=results.facets, facet_totals=results.group_totals)


# The most rows one export writes: the whole database of a large company, in a file Excel still opens.
EXPORT_LIMIT = 100_000


async def customers_for_export(user: CurrentUser, filters: CustomerFilters) -> list[dict[str, Any]]:
    """Every customer of the list view, in its order, at most EXPORT_LIMIT. A text query is answered by the search
    index like the list's; while search is unreachable, by the database's name, company and phone match."""
    ids: list[int] | None = None
    if filters.q:
        prepared = _index_scope(user, filters)
        if prepared is None:
            return []
        groups, scope = prepared
        try:
            ids = await search_engine.call(
                search_query.customer_ids, filters.q, scope, groups, sort=_INDEX_SORTS[filters.sort], limit=EXPORT_LIMIT
            )
        except search_engine.Unavailable:
            ids = None
    if ids is not None:
        by_id: dict[int, dict[str, Any]] = {}
        for chunk in in_chunks(ids):
            for row in await Customer.select(*_DETAIL_COLUMNS).where(Customer.id.is_in(chunk), visible_customers(user)):
                by_id[row["id"]] = row
        return [by_id[customer_id] for customer_id in ids if customer_id in by_id]
    column, ascending = SORTS[filters.sort]
    return await (
        Customer.select(*_DETAIL_COLUMNS)
        .where(*_page_clauses(user, filters), Customer.kind == filters.kind)
        .order_by(column, ascending=ascending)
        .order_by(Customer.id, ascending=ascending)
        .limit(EXPORT_LIMIT)
    )


_DETAIL_COLUMNS = (
    Customer.all_columns(),
    Customer.owner.name.as_alias("owner_name"),
    Customer.created_by.name.as_alias("created_by_name"),
    Customer.industry.label.as_alias("industry_label"),
    Customer.industry.label_en.as_alias("industry_label_en"),
    Customer.source_channel.label.as_alias("source_channel_label"),
    Customer.source_channel.label_en.as_alias("source_channel_label_en"),
    Customer.budget_band.label.as_alias("budget_band_label"),
    Customer.budget_band.label_en.as_alias("budget_band_label_en"),
)


async def get_customer(user: CurrentUser, customer_id: int, *, deleted: bool = False) -> dict[str, Any]:
    """One customer in the user's scope with the labels of its options; NotVisible otherwise.

    `deleted=True` reads a soft-deleted customer, for an admin restoring it.
    """
    row = await _CUSTOMER[user.is_supervisor, deleted](customer_id=customer_id, account_id=user.account_id)
    if row is None:
        raise NotVisible(customer_id)
    row["mobile_display"] = normalize.format_mobile(row["mobile"])
    return row


_BOTH = (True, False)


def _customer_query(supervisor: bool, deleted: bool) -> Prepared[Any]:
    return Prepared(
        lambda customer_id, account_id: (
            Customer.select(*_DETAIL_COLUMNS)
            .where(Customer.id == customer_id, _visible(supervisor, account_id, deleted))
            .first()
        )
    )


# The customer page's reads: their SQL is generated once (see db.Prepared).
_CUSTOMER = {(supervisor, deleted): _customer_query(supervisor, deleted) for supervisor in _BOTH for deleted in _BOTH}
_CONTACTS = Prepared(
    lambda customer_id: (
        Contact.select()
        .where(Contact.customer == customer_id, Contact.deleted_at.is_null())
        .order_by(Contact.decision_maker, ascending=False)
        .order_by(Contact.id)
    )
)
_PROJECTS = Prepared(
    lambda customer_id: (
        Project.select()
        .where(Project.customer == customer_id, Project.deleted_at.is_null())
        .order_by(Project.signed_on, ascending=False)
        .order_by(Project.id, ascending=False)
    )
)


async def contacts_of(customer_id: int) -> list[dict[str, Any]]:
    rows = await _CONTACTS(customer_id=customer_id)
    for row in rows:
        row["mobile_display"] = normalize.format_mobile(row["mobile"])
    return rows


async def projects_of(customer_id: int) -> list[dict[str, Any]]:
    return await _PROJECTS(customer_id=customer_id)


async def deleted_customers(limit: int = 200) -> list[dict[str, Any]]:
    """The trash, newest deletion first, for an admin to restore from."""
    return (
        await Customer.select(
            Customer.id,
            Customer.name,
            Customer.kind,
            Customer.deleted_at,
            Customer.owner.name.as_alias("owner_name"),
        )
        .where(Customer.deleted_at.is_not_null())
        .order_by(Customer.deleted_at, ascending=False)
        .limit(limit)
    )


# ---------------------------------------------------------------------------------------------------------
# Duplicates


@dataclass
class Duplicate:
    id: int
    name: str
    kind: str
    owner_name: str | None
    reasons: list[str]
    visible: bool


async def find_duplicates(
    user: CurrentUser,
    *,
    name: str = "",
    mobile: str = "",
    email: str = "",
    wechat: str = "",
    province: str = "",
    city: str = "",
    exclude_id: int | None = None,
) -> list[Duplicate]:
    """Existing customers that look like the one being entered: same mobile, email or WeChat, or a name that
    is the same once legal forms and place prefixes are dropped — in the same place: 玉溪市交通运输局 is not
    昆明市交通运输局 (`finder.elsewhere`). Customers outside the user's scope are reported too (without a link)
    so staff do not create a second record of a colleague's customer."""
    mobile = normalize.mobile_or_none(mobile) or ""
    email = normalize.normalise_email(email)
    wechat = normalize.normalise_wechat(wechat)
    key = normalize.name_key(name) if name.strip() else ""
    # (clause, reason, whether it is by name): a similar name counts only in the same place.
    tests: list[tuple[Any, str, bool]] = []
    if mobile:
        tests.append((Customer.mobile == mobile, _("same mobile"), False))
        tests.append(
            (
                Customer.id.is_in(
                    Contact.select(Contact.customer).where(Contact.mobile == mobile, Contact.deleted_at.is_null())
                ),
                _("same mobile as a contact"),
                False,
            )
        )
    if email:
        tests.append((Customer.email == email, _("same email"), False))
    if wechat:
        tests.append((Customer.wechat == wechat, _("same WeChat"), False))
    try:
        province = normalise_province(province)
    except ValueError:
        province = ""
    place = finder.place_of(name, province, city.strip())
    if len(key) >= 2:
        same_name = Customer.name_key == key
        if place[1]:
            same_name &= Customer.city.is_in([*finder.city_spellings(place[1]), ""])
        tests.append((same_name, _("similar name"), True))
    if not tests:
        return []
    found: dict[int, Duplicate] = {}
    for clause, reason, by_name in tests:
        query = Customer.select(
            Customer.id,
            Customer.name,
            Customer.kind,
            Customer.owner,
            Customer.owner.name.as_alias("owner_name"),
            Customer.province,
            Customer.city,
        ).where(clause, Customer.deleted_at.is_null())
        if exclude_id:
            query = query.where(Customer.id != exclude_id)
        if by_name:
            # More are read, as some may turn out to be elsewhere by the place their name opens with.
            rows = [row for row in await query.limit(50) if not finder.elsewhere(place, finder.place_of_record(row))]
        else:
            rows = await query.limit(10)
        for row in rows[:10]:
            if row["id"] not in found:
                visible = user.is_supervisor or row["owner"] in (None, user.account_id)
                found[row["id"]] = Duplicate(row["id"], row["name"], row["kind"], row["owner_name"], [], visible)
            found[row["id"]].reasons.append(reason)
    return list(found.values())


# ---------------------------------------------------------------------------------------------------------
# Writes


async def _clean_customer_form(data: dict[str, str], field_names: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    province = ""
    for name in field_names:
        try:
            values[name] = await clean_field(name, data.get(name, ""), province=province)
        except ValueError as error:
            errors[name] = str(error)
        if name == "province":
            province = values.get("province", "")
    return values, errors


async def create_customer(user: CurrentUser, data: dict[str, str]) -> int:
    """A new prospect (or member, if the form says so), owned by its creator unless left to the pool."""
    values, errors = await _clean_customer_form(data, NEW_CUSTOMER_FIELDS)
    kind = data.get("kind", Kind.prospect.value)
    if kind not in {k.value for k in Kind}:
        errors["kind"] = _("Choose prospect or member.")
    if errors:
        raise FormErrors(errors)
    now = datetime.now(UTC)
    values.update(
        kind=kind,
        name_key=normalize.name_key(values["name"]),
        owner=None if data.get("to_pool") else user.account_id,
        created_by=user.account_id,
        created_at=now,
        updated_at=now,
        converted_at=now if kind == Kind.member.value else None,
    )
    async with transaction():
        customer = Customer(**values)
        await customer.save()
        await core.record(
            actor_id=user.account_id,
            entity="customer",
            entity_id=customer.id,
            customer_id=customer.id,
            action="create",
            changes=core.diff({}, {k: v for k, v in values.items() if v not in ("", None)}),
        )
    return customer.id


async def update_field(user: CurrentUser, customer_id: int, field_name: str, raw: str) -> None:
    """Change one field in place. Raises NotVisible, PermissionError (supervisor-only field) or FormErrors."""
    spec = FIELDS.get(field_name)
    if spec is None:
        raise NotVisible(field_name)
    if spec.supervisor_only and not user.is_supervisor:
        raise PermissionError(field_name)
    async with transaction():
        before = await Customer.select().where(Customer.id == customer_id, visible_customers(user)).first()
        if before is None:
            raise NotVisible(customer_id)
        try:
            value = await clean_field(field_name, raw, province=before["province"])
        except ValueError as error:
            raise FormErrors({field_name: str(error)}) from None
        after: dict[str, Any] = {field_name: value}
        if field_name == "name":
            after["name_key"] = normalize.name_key(value)
        if field_name == "province" and value != before["province"]:
            # A city belongs to its province: keep it only if the new province lists it.
            after["city"] = before["city"] if before["city"] in PROVINCES.get(value, []) else ""
        if field_name == "value_tier":
            # A tier set by hand stays pinned against the nightly recomputation; "automatic" releases it.
            after["tier_pinned"] = value is not None
        changes = core.diff(before, after)
        if not changes:
            return
        after["updated_at"] = datetime.now(UTC)
        await Customer.update(after).where(Customer.id == customer_id)
        await core.record(
            actor_id=user.account_id,
            entity="customer",
            entity_id=customer_id,
            customer_id=customer_id,
            action="update",
            changes=changes,
        )


async def convert_to_member(user: CurrentUser, customer_id: int) -> None:
    """A prospect becomes a member when we start working together; the date feeds the conversion rates."""
    async with transaction():
        before = await Customer.select(Customer.kind).where(Customer.id == customer_id, visible_customers(user)).first()
        if before is None:
            raise NotVisible(customer_id)
        if before["kind"] == Kind.member.value:
            return
        now = datetime.now(UTC)
        await Customer.update(
            {Customer.kind: Kind.member.value, Customer.converted_at: now, Customer.updated_at: now}
        ).where(Customer.id == customer_id)
        await core.record(
            actor_id=user.account_id,
            entity="customer",
            entity_id=customer_id,
            customer_id=customer_id,
            action="convert",
            changes={
                "kind": [Kind.prospect.value, Kind.member.value],
                "converted_at": [None, now.isoformat()],
            },
        )


async def set_owner(user: CurrentUser, customer_id: int, owner_id: int | None) -> None:
    """Supervisors reassign any customer (or return it to the pool); staff may only claim a pool customer."""
    async with transaction():
        before = (
            await Customer.select(Customer.owner).where(Customer.id == customer_id, visible_customers(user)).first()
        )
        if before is None:
            raise NotVisible(customer_id)
        if not user.is_supervisor and not (before["owner"] is None and owner_id == user.account_id):
            raise PermissionError(customer_id)
        if owner_id is not None and not await Account.exists().where(
            Account.id == owner_id, Account.user.active.eq(True)
        ):
            raise FormErrors({"owner": _("Choose an active staff member.")})
        if before["owner"] == owner_id:
            return
        await Customer.update({Customer.owner: owner_id, Customer.updated_at: datetime.now(UTC)}).where(
            Customer.id == customer_id
        )
        await core.record(
            actor_id=user.account_id,
            entity="customer",
            entity_id=customer_id,
            customer_id=customer_id,
            action="assign",
            changes={"owner": [before["owner"], owner_id]},
        )


async def soft_delete(user: CurrentUser, customer_id: int) -> None:
    async with transaction():
        if not await Customer.exists().where(Customer.id == customer_id, visible_customers(user)):
            raise NotVisible(customer_id)
        now = datetime.now(UTC)
        await Customer.update({Customer.deleted_at: now}).where(Customer.id == customer_id)
        await core.record(
            actor_id=user.account_id,
            entity="customer",
            entity_id=customer_id,
            customer_id=customer_id,
            action="delete",
            changes={"deleted_at": [None, now.isoformat()]},
        )


async def restore(user: CurrentUser, customer_id: int) -> None:
    """Admins bring a soft-deleted customer back, with its contacts, projects and follow-ups intact.
    Deleted customers are outside everyone else's scope."""
    if not user.is_admin:
        raise NotVisible(customer_id)
    async with transaction():
        row = (
            await Customer.select(Customer.deleted_at)
            .where(Customer.id == customer_id, Customer.deleted_at.is_not_null())
            .first()
        )
        if row is None:
            raise NotVisible(customer_id)
        await Customer.update({Customer.deleted_at: None, Customer.updated_at: datetime.now(UTC)}).where(
            Customer.id == customer_id
        )
        await core.record(
            actor_id=user.account_id,
            entity="customer",
            entity_id=customer_id,
            customer_id=customer_id,
            action="restore",
            changes={"deleted_at": [row["deleted_at"].isoformat(), None]},
        )


async def touch(customer_id: int) -> None:
    """Mark the customer changed (its list position) when something of its own changed, e.g. a contact."""
    await Customer.update({Customer.updated_at: datetime.now(UTC)}).where(Customer.id == customer_id)


# ---------------------------------------------------------------------------------------------------------
# Contacts


async def _clean_contact(data: dict[str, str]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    values: dict[str, Any] = {
        "name": normalize.clean_text(data.get("name", "")),
        "title": normalize.clean_text(data.get("title", "")),
        "decision_maker": data.get("decision_maker") in ("on", "1", "true", "yes"),
    }
    if not values["name"]:
        errors["name"] = _("This field is required.")
    elif len(values["name"]) > 100:
        errors["name"] = _("At most %(n)s characters.", n=100)
    if len(values["title"]) > 100:
        errors["title"] = _("At most %(n)s characters.", n=100)
    for name in ("mobile", "email", "wechat"):
        try:
            values[name] = await clean_field(name, data.get(name, ""))
        except ValueError as error:
            errors[name] = str(error)
    if errors:
        raise FormErrors(errors)
    return values


async def add_contact(user: CurrentUser, customer_id: int, data: dict[str, str]) -> int:
    values = await _clean_contact(data)
    async with transaction():
        await check_visible(user, customer_id)
        contact = Contact(customer=customer_id, **values)
        await contact.save()
        await touch(customer_id)
        await core.record(
            actor_id=user.account_id,
            entity="contact",
            entity_id=contact.id,
            customer_id=customer_id,
            action="create",
            changes=core.diff({}, values),
        )
    return contact.id


async def get_contact(user: CurrentUser, customer_id: int, contact_id: int) -> dict[str, Any]:
    await check_visible(user, customer_id)
    row = (
        await Contact.select()
        .where(Contact.id == contact_id, Contact.customer == customer_id, Contact.deleted_at.is_null())
        .first()
    )
    if row is None:
        raise NotVisible(contact_id)
    row["mobile_display"] = normalize.format_mobile(row["mobile"])
    return row


async def update_contact(user: CurrentUser, customer_id: int, contact_id: int, data: dict[str, str]) -> None:
    values = await _clean_contact(data)
    async with transaction():
        before = await get_contact(user, customer_id, contact_id)
        changes = core.diff(before, values)
        if not changes:
            return
        await Contact.update(values).where(Contact.id == contact_id)
        await touch(customer_id)
        await core.record(
            actor_id=user.account_id,
            entity="contact",
            entity_id=contact_id,
            customer_id=customer_id,
            action="update",
            changes=changes,
        )


async def delete_contact(user: CurrentUser, customer_id: int, contact_id: int) -> None:
    async with transaction():
        before = await get_contact(user, customer_id, contact_id)
        await Contact.update({Contact.deleted_at: datetime.now(UTC)}).where(Contact.id == contact_id)
        await touch(customer_id)
        await core.record(
            actor_id=user.account_id,
            entity="contact",
            entity_id=contact_id,
            customer_id=customer_id,
            action="delete",
            changes={"name": [before["name"], None]},
        )


# ---------------------------------------------------------------------------------------------------------
# Projects


def parse_amount(raw: str) -> int:
    """'1,234,567.5' or '¥12万' → whole fen. Raises ValueError for anything else."""
    text = normalize.clean_text(raw).replace(",", "").replace("¥", "").replace("￥", "").replace("元", "").strip()
    multiplier = Decimal(1)
    if text.endswith("万"):
        text, multiplier = text[:-1], Decimal(10_000)
    try:
        amount = Decimal(text) * multiplier
    except InvalidOperation:
        raise ValueError(raw) from None
    if not amount.is_finite() or amount < 0 or amount >= Decimal(10) ** 12:
        raise ValueError(raw)
    return int((amount * 100).to_integral_value())


def _clean_project(data: dict[str, str]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    values: dict[str, Any] = {
        "name": normalize.clean_text(data.get("name", "")),
        "notes": data.get("notes", "").replace("\r\n", "\n").strip(),
        "status": data.get("status", ProjectStatus.negotiating.value),
    }
    if not values["name"]:
        errors["name"] = _("This field is required.")
    elif len(values["name"]) > 200:
        errors["name"] = _("At most %(n)s characters.", n=200)
    if len(values["notes"]) > 5000:
        errors["notes"] = _("At most %(n)s characters.", n=5000)
    if values["status"] not in {status.value for status in ProjectStatus}:
        errors["status"] = _("Choose a status from the list.")
    try:
        values["amount_fen"] = parse_amount(data.get("amount", "") or "0")
    except ValueError:
        errors["amount"] = _("Enter an amount in yuan, e.g. 120000 or 12万.")
    signed_on = data.get("signed_on", "").strip()
    values["signed_on"] = None
    if signed_on:
        try:
            values["signed_on"] = date.fromisoformat(signed_on)
        except ValueError:
            errors["signed_on"] = _("Enter a date like 2026-03-15.")
    if errors:
        raise FormErrors(errors)
    return values


def project_contact_moment(signed_on: date) -> datetime:
    """A signed project counts as contact on its signing day; for the active/inactive rule."""
    return datetime(signed_on.year, signed_on.month, signed_on.day, tzinfo=UTC)


async def refresh_contact_dates(customer_id: int) -> None:
    """Recompute the customer's denormalised follow-up columns from its live records. Call inside the write's
    transaction.

    last_contact_at / first_contact_at: the latest / earliest contact, a follow-up or a signed project.
    contact_count: how many contacts, live follow-ups and signed projects.
    next_follow_up_at: what the newest follow-up planned — a newer follow-up without a date clears an older plan.
    """
    # Write the customer row first: on PostgreSQL that locks it, so two follow-ups saved at once for the same
    # customer take turns and the second one's reads below see the first (SQLite's IMMEDIATE already does).
    now = datetime.now(UTC)
    await Customer.update({Customer.updated_at: now}).where(Customer.id == customer_id)
    live = (FollowUp.customer == customer_id, FollowUp.deleted_at.is_null())
    newest = (
        await FollowUp.select(FollowUp.happened_at, FollowUp.next_follow_up_at)
        .where(*live)
        .order_by(FollowUp.happened_at, ascending=False)
        .order_by(FollowUp.id, ascending=False)
        .first()
    )
    oldest = await FollowUp.select(FollowUp.happened_at).where(*live).order_by(FollowUp.happened_at).first()
    follow_ups = await FollowUp.count().where(*live) if newest else 0
    signings = [
        project_contact_moment(row["signed_on"])
        for row in await Project.select(Project.signed_on).where(
            Project.customer == customer_id, Project.deleted_at.is_null(), Project.signed_on.is_not_null()
        )
    ]
    contacts = signings + [row["happened_at"] for row in (newest, oldest) if row]
    await Customer.update(
        {
            Customer.last_contact_at: max(contacts, default=None),
            Customer.first_contact_at: min(contacts, default=None),
            Customer.contact_count: follow_ups + len(signings),
            Customer.next_follow_up_at: newest["next_follow_up_at"] if newest else None,
        }
    ).where(Customer.id == customer_id)


async def refresh_revenue(customer_id: int) -> None:
    """Recompute the customer's revenue (its projects neither deleted nor cancelled) after a project write, inside
    its transaction: the analysis sums this column rather than every project."""
    rows = await Project.select(Sum(Project.amount_fen, alias="revenue")).where(
        Project.customer == customer_id,
        Project.deleted_at.is_null(),
        Project.status != ProjectStatus.cancelled,
    )
    revenue = int((rows[0]["revenue"] if rows else None) or 0)
    await Customer.update({Customer.revenue_fen: revenue}).where(Customer.id == customer_id)


async def add_project(user: CurrentUser, customer_id: int, data: dict[str, str]) -> int:
    values = _clean_project(data)
    async with transaction():
        await check_visible(user, customer_id)
        project = Project(customer=customer_id, **values)
        await project.save()
        await refresh_contact_dates(customer_id)
        await refresh_revenue(customer_id)
        await core.record(
            actor_id=user.account_id,
            entity="project",
            entity_id=project.id,
            customer_id=customer_id,
            action="create",
            changes=core.diff({}, values),
        )
    return project.id


async def get_project(user: CurrentUser, customer_id: int, project_id: int) -> dict[str, Any]:
    await check_visible(user, customer_id)
    row = (
        await Project.select()
        .where(Project.id == project_id, Project.customer == customer_id, Project.deleted_at.is_null())
        .first()
    )
    if row is None:
        raise NotVisible(project_id)
    return row


async def update_project(user: CurrentUser, customer_id: int, project_id: int, data: dict[str, str]) -> None:
    values = _clean_project(data)
    async with transaction():
        before = await get_project(user, customer_id, project_id)
        changes = core.diff(before, values)
        if not changes:
            return
        await Project.update(values).where(Project.id == project_id)
        await refresh_contact_dates(customer_id)
        await refresh_revenue(customer_id)
        await core.record(
            actor_id=user.account_id,
            entity="project",
            entity_id=project_id,
            customer_id=customer_id,
            action="update",
            changes=changes,
        )


async def delete_project(user: CurrentUser, customer_id: int, project_id: int) -> None:
    async with transaction():
        before = await get_project(user, customer_id, project_id)
        await Project.update({Project.deleted_at: datetime.now(UTC)}).where(Project.id == project_id)
        await refresh_contact_dates(customer_id)
        await refresh_revenue(customer_id)
        await core.record(
            actor_id=user.account_id,
            entity="project",
            entity_id=project_id,
            customer_id=customer_id,
            action="delete",
            changes={"name": [before["name"], None]},
        )


def project_form_values(project: dict[str, Any]) -> dict[str, str]:
    """A stored project as the strings its edit form shows."""
    return {
        "name": project["name"],
        "amount": str(Decimal(project["amount_fen"]) / 100),
        "signed_on": project["signed_on"].isoformat() if project["signed_on"] else "",
        "status": project["status"],
        "notes": project["notes"],
    }


# ---------------------------------------------------------------------------------------------------------
# Saved filter sets: a user's named customer list queries, reopened with one click


SAVED_FILTER_NAME_LENGTH = 60
SAVED_FILTER_QUERY_LENGTH = 1000


async def saved_filters(user: CurrentUser) -> list[dict[str, Any]]:
    """The user's own saved filter sets, by name; each `query` is ready for /customers?<query>."""
    return await _SAVED_FILTERS(owner=user.account_id)


# Read on every list page: the SQL is generated once (see db.Prepared).
_SAVED_FILTERS = Prepared(
    lambda owner: (
        SavedFilter.select(SavedFilter.id, SavedFilter.name, SavedFilter.query)
        .where(SavedFilter.owner == owner)
        .order_by(SavedFilter.name)
    )
)


async def save_filter(user: CurrentUser, name: str, query: str) -> int:
    """Save the list's filters (a URL query; the page is dropped) under a name. Saving under a name the user
    already has replaces that set: the name is what they reopen it by. Raises FormErrors."""
    name = normalize.clean_text(name)
    if not name:
        raise FormErrors({"name": _("This field is required.")})
    if len(name) > SAVED_FILTER_NAME_LENGTH:
        raise FormErrors({"name": _("At most %(n)s characters.", n=SAVED_FILTER_NAME_LENGTH)})
    normalised = CustomerFilters.from_query(dict(parse_qsl(query))).query(page=1)
    if len(normalised) > SAVED_FILTER_QUERY_LENGTH:
        raise FormErrors({"name": _("These filters are too long to save; shorten the search text.")})
    async with transaction():
        existing = (
            await SavedFilter.select(SavedFilter.id)
            .where(SavedFilter.owner == user.account_id, SavedFilter.name == name)
            .first()
        )
        if existing is not None:
            await SavedFilter.update({SavedFilter.query: normalised}).where(SavedFilter.id == existing["id"])
            return existing["id"]
        saved = SavedFilter(owner=user.account_id, name=name, query=normalised)
        await saved.save()
    return saved.id


async def delete_saved_filter(user: CurrentUser, saved_filter_id: int) -> None:
    """Remove one of the user's own saved filter sets; anyone else's is NotVisible."""
    async with transaction():
        mine = SavedFilter.id == saved_filter_id, SavedFilter.owner == user.account_id
        if not await SavedFilter.exists().where(*mine):
            raise NotVisible(saved_filter_id)
        await SavedFilter.delete().where(*mine)
