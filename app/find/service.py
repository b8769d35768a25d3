"""What the search box finds: customers, follow-ups and feedback in the user's scope from Meilisearch, or — while
Meilisearch is unreachable — customers found by name, company and phone number in the database."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.accounts.service import CurrentUser
from app.customers.normalize import format_mobile
from app.customers.service import PHONE_DIGITS_MIN, search_scope, text_matches, visible_customers
from app.customers.tables import Customer
from app.i18n import _
from search import engine as search_engine
from search import sync
from search.documents import CUSTOMERS, FEEDBACK, FOLLOW_UPS, INDEXES
from search.query import Found, Hit, highlighted, search_everything

QUERY_MAX = 100
DROPDOWN_LIMIT = 5
PAGE_LIMIT = 20
FALLBACK_LIMIT = 10
# Never typed by a person; PostgreSQL refuses NUL in text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def group_titles() -> dict[str, str]:
    return {CUSTOMERS: _("Customers"), FOLLOW_UPS: _("Follow-ups"), FEEDBACK: _("Feedback")}


def clean_query(raw: str | None) -> str:
    """What was typed, without control characters and surrounding space, at most QUERY_MAX characters."""
    return _CONTROL.sub(" ", raw or "").strip()[:QUERY_MAX].strip()


@dataclass
class Group:
    key: str
    title: str
    hits: list[Hit]
    total: int


@dataclass
class Results:
    query: str
    found: Found
    # Meilisearch is unreachable: only customers, matched by name, company and phone number in the database.
    limited: bool = False

    @property
    def empty(self) -> bool:
        return self.found.empty

    @property
    def groups(self) -> list[Group]:
        """The groups that have hits, in the order the dropdown and the page show them."""
        titles = group_titles()
        hits = {CUSTOMERS: self.found.customers, FOLLOW_UPS: self.found.follow_ups, FEEDBACK: self.found.feedback}
        return [
            Group(key, titles[key], hits[key], max(self.found.totals.get(key, 0), len(hits[key])))
            for key in INDEXES
            if hits[key]
        ]


def _nothing() -> Found:
    return Found(customers=[], follow_ups=[], feedback=[], totals={})


def _dated(hits: list[Hit], key: str) -> None:
    """Documents carry times as seconds since 1970; templates show datetimes."""
    for hit in hits:
        seconds = hit.extra.get(key)
        hit.extra["at"] = datetime.fromtimestamp(seconds, UTC) if seconds else None


async def find(user: CurrentUser, raw_query: str | None, *, limit: int = DROPDOWN_LIMIT) -> Results:
    """Up to `limit` hits per group for what the user typed, never from outside their scope."""
    query = clean_query(raw_query)
    if not query:
        return Results(query, _nothing())
    try:
        found = await search_engine.call(search_everything, query, search_scope(user), limit=limit)
    except search_engine.Unavailable:
        return Results(query, await _customers_from_database(user, query), limited=True)
    _dated(found.follow_ups, "happened_ts")
    _dated(found.feedback, "created_ts")
    return Results(query, found)


async def _customers_from_database(user: CurrentUser, query: str) -> Found:
    digits = re.sub(r"\D", "", query)
    rows = (
        await Customer.select(
            Customer.id,
            Customer.name,
            Customer.company,
            Customer.mobile,
            Customer.phone,
            Customer.kind,
            Customer.province,
            Customer.city,
            Customer.owner,
            Customer.owner.name.as_alias("owner_name"),
        )
        .where(visible_customers(user), text_matches(query))
        .order_by(Customer.updated_at, ascending=False)
        .limit(FALLBACK_LIMIT)
    )
    hits = [_customer_hit(row, query, digits) for row in rows]
    return Found(customers=hits, follow_ups=[], feedback=[], totals={CUSTOMERS: len(hits)})


def _customer_hit(row: dict[str, Any], query: str, digits: str) -> Hit:
    """The name, and under it the company or the phone number that matched (else the company)."""
    detail = row["company"]
    if query.lower() not in row["company"].lower() and len(digits) >= PHONE_DIGITS_MIN:
        if digits in row["mobile"]:
            detail = format_mobile(row["mobile"])
        elif digits in re.sub(r"\D", "", row["phone"]):
            detail = row["phone"]
    return Hit(
        id=row["id"],
        customer_id=row["id"],
        title=highlighted(row["name"], None, query),
        detail=highlighted(detail, None, query),
        extra={
            "kind": row["kind"],
            "province": row["province"],
            "city": row["city"],
            "owner_name": row["owner_name"],
            "owner_id": row["owner"],
        },
    )


# ---------------------------------------------------------------------------------------------------------
# The admin's status page


@dataclass
class IndexState:
    key: str
    title: str
    documents: int | None
    records: int

    @property
    def in_step(self) -> bool:
        return self.documents == self.records


@dataclass
class SearchHealth:
    status: sync.Status
    indexes: list[IndexState]


async def search_health() -> SearchHealth:
    """Whether Meilisearch answers, what waits in the outbox, and documents against database rows per index."""
    status = await sync.status()
    titles = group_titles()
    indexes = [
        IndexState(key, titles[key], status.index_counts.get(key), status.database_counts.get(key, 0))
        for key in INDEXES
    ]
    return SearchHealth(status, indexes)
