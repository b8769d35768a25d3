"""Feedback (反馈): what customers and website visitors tell us, with a rating, and how staff handle it — the
inbox with its scope, the reply, and the ways feedback comes in (recorded by staff, or submitted from the chat)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from piccolo.columns.combination import And, Or, Where
from piccolo.query.functions.aggregate import Count

from app.accounts.service import CurrentUser
from app.core import service as core
from app.customers import normalize
from app.customers.service import FormErrors, NotVisible, check_visible
from app.customers.tables import Customer
from app.db import MAX_ID, Prepared, transaction
from app.feedback.tables import Feedback, FeedbackStatus
from app.i18n import _

PAGE_SIZE = 25
CONTENT_MAX = 5000
REPLY_MAX = 5000
# A customer's page lists its most recent feedback; the inbox has the rest.
CUSTOMER_SECTION_LIMIT = 20


def visible_feedback(user: CurrentUser) -> Where | And | Or:
    """Staff see feedback about customers in their scope and feedback from visitors who are no customer (yet);
    supervisors see all of it."""
    live = Feedback.deleted_at.is_null()
    if user.is_supervisor:
        return live
    customer_visible = Feedback.customer.deleted_at.is_null() & (
        Feedback.customer.owner.is_null() | (Feedback.customer.owner == user.account_id)
    )
    return live & (Feedback.customer.is_null() | customer_visible)


_COLUMNS = (
    Feedback.all_columns(),
    Feedback.customer.name.as_alias("customer_name"),
    Feedback.customer.deleted_at.as_alias("customer_deleted_at"),
    Feedback.handled_by.name.as_alias("handled_by_name"),
    Feedback.created_by.name.as_alias("created_by_name"),
)


# ---------------------------------------------------------------------------------------------------------
# Reading


@dataclass
class Inbox:
    rows: list[dict[str, Any]]
    counts: dict[str, int]
    status: str
    page: int = 1
    pages: int = 1
    total: int = 0


def parse_status(raw: str | None) -> str:
    return raw if raw in {status.value for status in FeedbackStatus} else FeedbackStatus.new.value


async def inbox(user: CurrentUser, status: str = FeedbackStatus.new.value, page: int = 1) -> Inbox:
    """One page of a tab (new or handled), newest first, and the count of each tab (two queries)."""
    status = parse_status(status)
    scope = visible_feedback(user)
    count_rows = await Feedback.select(Feedback.status, Count(alias="n")).where(scope).group_by(Feedback.status)
    counts = {status.value: 0 for status in FeedbackStatus}
    counts.update({row["status"]: row["n"] for row in count_rows})
    total = counts[status]
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = max(1, min(page, pages))
    rows = (
        await Feedback.select(*_COLUMNS)
        .where(scope, Feedback.status == status)
        .order_by(Feedback.created_at, ascending=False)
        .order_by(Feedback.id, ascending=False)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    )
    return Inbox(rows=rows, counts=counts, status=status, page=page, pages=pages, total=total)


async def get_feedback(user: CurrentUser, feedback_id: int) -> dict[str, Any]:
    if not 0 < feedback_id <= MAX_ID:
        raise NotVisible(feedback_id)
    row = await Feedback.select(*_COLUMNS).where(Feedback.id == feedback_id, visible_feedback(user)).first()
    if row is None:
        raise NotVisible(feedback_id)
    return row


# Read on every customer page: its SQL is generated once (see db.Prepared).
_OF_CUSTOMER = Prepared(
    lambda customer_id: (
        Feedback.select(*_COLUMNS)
        .where(Feedback.customer == customer_id, Feedback.deleted_at.is_null())
        .order_by(Feedback.created_at, ascending=False)
        .order_by(Feedback.id, ascending=False)
        .limit(CUSTOMER_SECTION_LIMIT)
    )
)


async def feedback_of(customer_id: int) -> list[dict[str, Any]]:
    return await _OF_CUSTOMER(customer_id=customer_id)


async def customer_section_context(user: CurrentUser, customer: dict[str, Any]) -> dict[str, Any]:
    """What `feedback/_customer_section.html` needs beside `customer` (from customers.service.get_customer)."""
    return {"feedback_items": await feedback_of(customer["id"]), "feedback_form": {}, "feedback_errors": {}}


# ---------------------------------------------------------------------------------------------------------
# Feedback coming in


def _clean_rating(raw: int | str | None) -> int | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        rating = int(raw)
    except ValueError:
        raise ValueError(raw) from None
    if not 1 <= rating <= 5:
        raise ValueError(raw)
    return rating


def _clean_feedback(content: str, rating: int | str | None, visitor_name: str, visitor_contact: str) -> dict[str, Any]:
    errors: dict[str, str] = {}
    values: dict[str, Any] = {
        "content": content.replace("\r\n", "\n").strip(),
        "visitor_name": normalize.clean_text(visitor_name),
        "visitor_contact": normalize.clean_text(visitor_contact),
    }
    if not values["content"]:
        errors["content"] = _("This field is required.")
    elif len(values["content"]) > CONTENT_MAX:
        errors["content"] = _("At most %(n)s characters.", n=CONTENT_MAX)
    try:
        values["rating"] = _clean_rating(rating)
    except ValueError:
        errors["rating"] = _("Choose a rating from 1 to 5 stars.")
    if len(values["visitor_name"]) > 100:
        errors["visitor_name"] = _("At most %(n)s characters.", n=100)
    if len(values["visitor_contact"]) > 200:
        errors["visitor_contact"] = _("At most %(n)s characters.", n=200)
    if errors:
        raise FormErrors(errors)
    return values


async def _insert(values: dict[str, Any], actor: CurrentUser | None) -> int:
    """Write the feedback and its audit row. Call inside a transaction."""
    feedback = Feedback(**values, created_by=actor.account_id if actor else None, created_at=datetime.now(UTC))
    await feedback.save()
    await core.record(
        actor_id=actor.account_id if actor else None,
        entity="feedback",
        entity_id=feedback.id,
        customer_id=values["customer"],
        action="create",
        changes=core.diff({}, {key: value for key, value in values.items() if value not in ("", None)}),
    )
    return feedback.id


async def submit_feedback(
    *,
    content: str,
    rating: int | str | None = None,
    customer_id: int | None = None,
    visitor_name: str = "",
    visitor_contact: str = "",
    conversation_id: int | None = None,
    actor: CurrentUser | None = None,
) -> int:
    """New feedback from anyone: a website visitor through the chat (no actor, a customer only when the chat
    knows one) or staff passing on what a customer said. Raises FormErrors, or NotVisible for a customer that
    does not exist (any more)."""
    values = _clean_feedback(content, rating, visitor_name, visitor_contact)
    values.update(customer=customer_id, conversation_id=conversation_id)
    async with transaction():
        if customer_id is not None and not await Customer.exists().where(
            Customer.id == customer_id, Customer.deleted_at.is_null()
        ):
            raise NotVisible(customer_id)
        return await _insert(values, actor)


async def add_customer_feedback(user: CurrentUser, customer_id: int, data: dict[str, str]) -> int:
    """Staff record feedback a customer gave by phone, in a visit or on WeChat. Raises NotVisible or FormErrors."""
    if not 0 < customer_id <= MAX_ID:
        raise NotVisible(customer_id)
    values = _clean_feedback(data.get("content", ""), data.get("rating", ""), data.get("visitor_name", ""), "")
    values.update(customer=customer_id, conversation_id=None)
    async with transaction():
        await check_visible(user, customer_id)
        return await _insert(values, user)


# ---------------------------------------------------------------------------------------------------------
# Handling


async def reply(user: CurrentUser, feedback_id: int, text: str, *, reply_required: bool = True) -> None:
    """Answer the feedback and mark it handled. `reply_required=False` marks it handled as it is (a reply typed
    anyway is kept). Raises NotVisible or FormErrors."""
    text = text.replace("\r\n", "\n").strip()
    if reply_required and not text:
        raise FormErrors({"reply": _("Write a reply, or mark the feedback handled without one.")})
    if len(text) > REPLY_MAX:
        raise FormErrors({"reply": _("At most %(n)s characters.", n=REPLY_MAX)})
    async with transaction():
        before = await get_feedback(user, feedback_id)
        after = {
            "status": FeedbackStatus.handled.value,
            "reply": text or before["reply"],
            "handled_by": user.account_id,
            "handled_at": datetime.now(UTC),
        }
        await Feedback.update(after).where(Feedback.id == feedback_id)
        await core.record(
            actor_id=user.account_id,
            entity="feedback",
            entity_id=feedback_id,
            customer_id=before["customer"],
            action="reply" if text else "handle",
            changes=core.diff(before, after),
        )


async def reopen(user: CurrentUser, feedback_id: int) -> None:
    """Back to the new tab, e.g. when the customer comes back on it. The earlier reply stays for reference."""
    async with transaction():
        before = await get_feedback(user, feedback_id)
        if before["status"] == FeedbackStatus.new.value:
            return
        after = {"status": FeedbackStatus.new.value, "handled_by": None, "handled_at": None}
        await Feedback.update(after).where(Feedback.id == feedback_id)
        await core.record(
            actor_id=user.account_id,
            entity="feedback",
            entity_id=feedback_id,
            customer_id=before["customer"],
            action="reopen",
            changes=core.diff(before, after),
        )
