"""Follow-ups (跟进记录): a customer's timeline, the rules for what a follow-up records, every write with its audit
and outbox rows and the customer's denormalised contact dates, and the "my follow-ups" due list."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from app.accounts.service import CurrentUser
from app.core import service as core
from app.customers import normalize
from app.customers.service import FormErrors, NotVisible, check_visible, contacts_of, refresh_contact_dates
from app.customers.tables import Contact, Customer
from app.db import MAX_ID, Prepared, in_chunks, transaction
from app.followups.tables import FollowUp
from app.i18n import SHANGHAI, _, local
from app.options.service import options, valid_option_id
from app.options.tables import OptionKind

CONTENT_MAX = 5000
OUTCOME_MAX = 2000
# A follow-up may be written down a little ahead (this evening's dinner), not days ahead: that is a plan, and
# plans go into the next follow-up date.
FUTURE_LIMIT = timedelta(days=1)
# A next follow-up is a day; it falls due at the start of the working day in Kunming.
NEXT_FOLLOW_UP_TIME = time(9, 0)
UPCOMING_DAYS = 14
# The due list shows this many customers at most; the rest are counted and reachable through the customer list.
DUE_LIST_LIMIT = 500
SNIPPET_LENGTH = 80
# The due list's groups, in the order the page shows them.
_GROUPS = ("overdue", "today", "upcoming")

_DATETIME = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?$")


def can_edit(user: CurrentUser, author_id: int | None) -> bool:
    """Staff change only what they wrote; supervisors keep everyone's records straight."""
    return user.is_supervisor or author_id == user.account_id


# ---------------------------------------------------------------------------------------------------------
# Reading


_TIMELINE_COLUMNS = (
    FollowUp.id,
    FollowUp.customer,
    FollowUp.author,
    FollowUp.author.name.as_alias("author_name"),
    FollowUp.contact,
    FollowUp.contact.name.as_alias("contact_name"),
    FollowUp.method,
    FollowUp.method.label.as_alias("method_label"),
    FollowUp.method.label_en.as_alias("method_label_en"),
    FollowUp.happened_at,
    FollowUp.content,
    FollowUp.outcome,
    FollowUp.next_follow_up_at,
    FollowUp.conversation_id,
    FollowUp.created_at,
)


# Read on every customer page: its SQL is generated once (see db.Prepared).
_TIMELINE = Prepared(
    lambda customer_id: (
        FollowUp.select(*_TIMELINE_COLUMNS)
        .where(FollowUp.customer == customer_id, FollowUp.deleted_at.is_null())
        .order_by(FollowUp.happened_at, ascending=False)
        .order_by(FollowUp.id, ascending=False)
    )
)


async def _timeline_of(user: CurrentUser, customer_id: int) -> list[dict[str, Any]]:
    rows = await _TIMELINE(customer_id=customer_id)
    for row in rows:
        row["can_edit"] = can_edit(user, row["author"])
    return rows


async def for_export(customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The live follow-ups of these customers (already read in the user's scope), newest first, each with its
    customer's name."""
    names = {customer["id"]: customer["name"] for customer in customers}
    rows: list[dict[str, Any]] = []
    for ids in in_chunks(list(names)):
        rows += await FollowUp.select(*_TIMELINE_COLUMNS).where(
            FollowUp.customer.is_in(ids), FollowUp.deleted_at.is_null()
        )
    for row in rows:
        row["customer_name"] = names[row["customer"]]
    rows.sort(key=lambda row: (row["happened_at"], row["id"]), reverse=True)
    return rows


async def timeline(user: CurrentUser, customer_id: int) -> list[dict[str, Any]]:
    """A visible customer's live follow-ups, newest first, with author, method and contact names."""
    await check_visible(user, customer_id)
    return await _timeline_of(user, customer_id)


async def get_followup(user: CurrentUser, customer_id: int, followup_id: int) -> dict[str, Any]:
    """One live follow-up of a visible customer, as the timeline shows it; NotVisible otherwise."""
    await check_visible(user, customer_id)
    row = (
        await FollowUp.select(*_TIMELINE_COLUMNS)
        .where(
            FollowUp.id == followup_id,
            FollowUp.customer == customer_id,
            FollowUp.deleted_at.is_null(),
        )
        .first()
    )
    if row is None:
        raise NotVisible(followup_id)
    row["can_edit"] = can_edit(user, row["author"])
    return row


async def form_choices(
    customer_id: int, followup: dict[str, Any] | None = None, *, contacts: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The method and contact choices of a follow-up form (`contacts` when the caller has them already). An
    edited follow-up keeps its method and contact even when the method was retired or the contact deleted."""
    methods = await options(OptionKind.followup_method)
    contacts = list(contacts) if contacts is not None else await contacts_of(customer_id)
    if followup is not None:
        if followup["method"] and followup["method"] not in {method["id"] for method in methods}:
            methods.append(
                {"id": followup["method"], "label": followup["method_label"], "label_en": followup["method_label_en"]}
            )
        if followup["contact"] and followup["contact"] not in {contact["id"] for contact in contacts}:
            contacts.append({"id": followup["contact"], "name": followup["contact_name"], "title": ""})
    return {"followup_methods": methods, "contacts": contacts}


async def section_context(
    user: CurrentUser, customer: dict[str, Any], *, contacts: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """What `followups/_section.html` needs beside `customer` (a dict from customers.service.get_customer)."""
    choices = await form_choices(customer["id"], contacts=contacts)
    return {
        "followups": await _timeline_of(user, customer["id"]),
        "followup_methods": choices["followup_methods"],
        "contacts": choices["contacts"],
        "followup_form": {},
        "followup_errors": {},
    }


def form_values(followup: dict[str, Any]) -> dict[str, str]:
    """A stored follow-up as the strings its edit form shows (times in Asia/Shanghai)."""
    return {
        "method": str(followup["method"] or ""),
        "contact": str(followup["contact"] or ""),
        "happened_at": local(followup["happened_at"]).strftime("%Y-%m-%dT%H:%M"),
        "content": followup["content"],
        "outcome": followup["outcome"],
        "next_follow_up_at": (
            local(followup["next_follow_up_at"]).date().isoformat() if followup["next_follow_up_at"] else ""
        ),
    }


# ---------------------------------------------------------------------------------------------------------
# Field rules


def parse_local_datetime(raw: str) -> datetime | None:
    """'2026-03-15T14:30' (a datetime-local input; '2026/3/15 14:30' from older browsers' text inputs) read as
    Asia/Shanghai time, returned in UTC. None for an empty value; ValueError for anything else."""
    text = normalize.clean_text(raw)
    if not text:
        return None
    match = _DATETIME.match(text)
    if match is None:
        raise ValueError(raw)
    year, month, day, hour, minute, second = (int(part) if part else 0 for part in match.groups())
    if year < 1990:
        raise ValueError(raw)
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI).astimezone(UTC)


def parse_local_date(raw: str) -> date | None:
    """'2026-03-15' (a date input) → the date; None for an empty value; ValueError for anything else."""
    text = normalize.clean_text(raw)
    if not text:
        return None
    match = _DATETIME.match(text)
    if match is None or match.group(4) is not None:
        raise ValueError(raw)
    year, month, day = (int(part) for part in match.groups()[:3])
    if year < 1990:
        raise ValueError(raw)
    return date(year, month, day)


def due_moment(day: date) -> datetime:
    """A next follow-up date as the moment it falls due: that day at 09:00 in Asia/Shanghai, in UTC."""
    return datetime.combine(day, NEXT_FOLLOW_UP_TIME, tzinfo=SHANGHAI).astimezone(UTC)


async def _clean(data: dict[str, str], customer_id: int, before: dict[str, Any] | None = None) -> dict[str, Any]:
    """The values to store for a follow-up form, or FormErrors. `before` is the follow-up being edited: what
    the user left unchanged is kept as stored, even a retired method or a deleted contact."""
    errors: dict[str, str] = {}
    kept = form_values(before) if before else {}
    now = datetime.now(UTC)

    content = data.get("content", "").replace("\r\n", "\n").strip()
    outcome = data.get("outcome", "").replace("\r\n", "\n").strip()
    if not content:
        errors["content"] = _("This field is required.")
    elif len(content) > CONTENT_MAX:
        errors["content"] = _("At most %(n)s characters.", n=CONTENT_MAX)
    if len(outcome) > OUTCOME_MAX:
        errors["outcome"] = _("At most %(n)s characters.", n=OUTCOME_MAX)

    raw_method = data.get("method", "").strip()
    method: int | None = None
    if before and raw_method == kept["method"]:
        method = before["method"]
    else:
        try:
            method = await valid_option_id(OptionKind.followup_method, raw_method)
        except ValueError:
            errors["method"] = _("Choose an entry from the list.")

    raw_contact = data.get("contact", "").strip()
    contact: int | None = None
    if before and raw_contact == kept["contact"]:
        contact = before["contact"]
    elif raw_contact:
        if not raw_contact.isdigit() or len(raw_contact) > 9:
            errors["contact"] = _("Choose a contact of this customer.")
        elif await Contact.exists().where(
            Contact.id == int(raw_contact), Contact.customer == customer_id, Contact.deleted_at.is_null()
        ):
            contact = int(raw_contact)
        else:
            errors["contact"] = _("Choose a contact of this customer.")

    raw_happened = data.get("happened_at", "")
    happened_at: datetime | None = None
    if before and normalize.clean_text(raw_happened) == kept["happened_at"]:
        # The form shows minutes: saving it unchanged must not move the stored seconds.
        happened_at = before["happened_at"]
    else:
        try:
            happened_at = parse_local_datetime(raw_happened) or now.replace(microsecond=0)
        except ValueError:
            errors["happened_at"] = _("Enter a date and time like 2026-03-15 14:30.")
        else:
            if happened_at > now + FUTURE_LIMIT:
                errors["happened_at"] = _("This is more than a day ahead. Use the next follow-up date for plans.")

    raw_next = data.get("next_follow_up_at", "")
    next_follow_up_at: datetime | None = None
    try:
        next_day = parse_local_date(raw_next)
    except ValueError:
        errors["next_follow_up_at"] = _("Enter a date like 2026-03-15.")
    else:
        if next_day is not None:
            if before and before["next_follow_up_at"] and raw_next.strip() == kept["next_follow_up_at"]:
                next_follow_up_at = before["next_follow_up_at"]
            else:
                next_follow_up_at = due_moment(next_day)
            if happened_at is not None and next_day < local(happened_at).date():
                errors["next_follow_up_at"] = _("The next follow-up cannot be before this one.")

    if errors:
        raise FormErrors(errors)
    return {
        "method": method,
        "contact": contact,
        "happened_at": happened_at,
        "content": content,
        "outcome": outcome,
        "next_follow_up_at": next_follow_up_at,
    }


# ---------------------------------------------------------------------------------------------------------
# Writes


async def _record(user: CurrentUser, customer_id: int, followup_id: int, action: str, changes: dict) -> None:
    # The follow-up changes its customer's last contact and next follow-up: the customer's search document.
    await core.record(
        actor_id=user.account_id,
        entity="follow_up",
        entity_id=followup_id,
        customer_id=customer_id,
        action=action,
        changes=changes,
    )


async def add_followup(user: CurrentUser, customer_id: int, data: dict[str, str]) -> int:
    """Record a follow-up by the user. Raises NotVisible or FormErrors."""
    async with transaction():
        await check_visible(user, customer_id)
        values = await _clean(data, customer_id)
        followup = FollowUp(customer=customer_id, author=user.account_id, **values)
        await followup.save()
        await refresh_contact_dates(customer_id)
        await _record(user, customer_id, followup.id, "create", core.diff({}, values))
    return followup.id


async def _editable(user: CurrentUser, customer_id: int, followup_id: int) -> dict[str, Any]:
    before = await get_followup(user, customer_id, followup_id)
    if not before["can_edit"]:
        raise PermissionError(followup_id)
    return before


async def update_followup(user: CurrentUser, customer_id: int, followup_id: int, data: dict[str, str]) -> None:
    """Raises NotVisible, PermissionError (a colleague's follow-up, for staff) or FormErrors."""
    async with transaction():
        before = await _editable(user, customer_id, followup_id)
        values = await _clean(data, customer_id, before)
        changes = core.diff(before, values)
        if not changes:
            return
        await FollowUp.update(values).where(FollowUp.id == followup_id)
        await refresh_contact_dates(customer_id)
        await _record(user, customer_id, followup_id, "update", changes)


async def delete_followup(user: CurrentUser, customer_id: int, followup_id: int) -> None:
    """Soft delete. Raises NotVisible or PermissionError."""
    async with transaction():
        before = await _editable(user, customer_id, followup_id)
        now = datetime.now(UTC)
        await FollowUp.update({FollowUp.deleted_at: now}).where(FollowUp.id == followup_id)
        await refresh_contact_dates(customer_id)
        await _record(
            user,
            customer_id,
            followup_id,
            "delete",
            {"content": [before["content"], None], "deleted_at": [None, now.isoformat()]},
        )


# ---------------------------------------------------------------------------------------------------------
# My follow-ups: who is due when


def _snippet(text: str | None) -> str:
    text = re.sub(r"\s+", " ", text or "").strip()
    return text if len(text) <= SNIPPET_LENGTH else text[: SNIPPET_LENGTH - 1] + "…"


async def _latest_contents(owner_id: int, window_ends: datetime) -> dict[int, str]:
    """The content of the newest live follow-up of each customer the due list shows (the same rows as its
    query), in one statement: an index lookup per customer, not a query per customer."""
    rows = await FollowUp.raw(
        "SELECT c.id AS customer_id, ("
        " SELECT f.content FROM follow_up f WHERE f.customer = c.id AND f.deleted_at IS NULL"
        " ORDER BY f.happened_at DESC, f.id DESC LIMIT 1"
        ") AS content FROM customer c"
        " WHERE c.owner = {} AND c.deleted_at IS NULL AND c.next_follow_up_at < {}"
        " ORDER BY c.next_follow_up_at DESC, c.id DESC LIMIT {}",
        owner_id,
        window_ends,
        DUE_LIST_LIMIT,
    )
    return {row["customer_id"]: row["content"] or "" for row in rows}


async def my_followups(
    user: CurrentUser, owner_id: int | None = None, *, now: datetime | None = None
) -> dict[str, Any]:
    """The owner's customers with a next follow-up, by when they are due in Asia/Shanghai: overdue (before
    today), today, upcoming (the next 14 days), and how many come later.

    Staff see their own; supervisors may name another owner. Reads the customer's denormalised
    next_follow_up_at through the (owner, next_follow_up_at) index: three queries whatever the numbers.
    """
    if owner_id is None or not user.is_supervisor or not 0 < owner_id <= MAX_ID:
        owner_id = user.account_id
    now = now or datetime.now(UTC)
    today = local(now).date()
    today_starts = datetime.combine(today, time(0), tzinfo=SHANGHAI).astimezone(UTC)
    tomorrow_starts = datetime.combine(today + timedelta(days=1), time(0), tzinfo=SHANGHAI).astimezone(UTC)
    window_ends = datetime.combine(today + timedelta(days=UPCOMING_DAYS + 1), time(0), tzinfo=SHANGHAI).astimezone(UTC)

    counts_row = await Customer.raw(
        "SELECT"
        " SUM(CASE WHEN next_follow_up_at < {} THEN 1 ELSE 0 END) AS overdue,"
        " SUM(CASE WHEN next_follow_up_at >= {} AND next_follow_up_at < {} THEN 1 ELSE 0 END) AS today,"
        " SUM(CASE WHEN next_follow_up_at >= {} AND next_follow_up_at < {} THEN 1 ELSE 0 END) AS upcoming,"
        " SUM(CASE WHEN next_follow_up_at >= {} THEN 1 ELSE 0 END) AS later"
        " FROM customer WHERE owner = {} AND deleted_at IS NULL AND next_follow_up_at IS NOT NULL",
        today_starts,
        today_starts,
        tomorrow_starts,
        tomorrow_starts,
        window_ends,
        window_ends,
        owner_id,
    )
    counts = {key: int((counts_row[0] if counts_row else {}).get(key) or 0) for key in (*_GROUPS, "later")}

    # Nearest dates first, so a long overdue tail is what a full list leaves out.
    rows = (
        await Customer.select(
            Customer.id,
            Customer.name,
            Customer.company,
            Customer.kind,
            Customer.mobile,
            Customer.last_contact_at,
            Customer.next_follow_up_at,
        )
        .where(
            Customer.owner == owner_id,
            Customer.deleted_at.is_null(),
            Customer.next_follow_up_at.is_not_null(),
            Customer.next_follow_up_at < window_ends,
        )
        .order_by(Customer.next_follow_up_at, ascending=False)
        .order_by(Customer.id, ascending=False)
        .limit(DUE_LIST_LIMIT)
    )
    contents = await _latest_contents(owner_id, window_ends)
    groups: dict[str, list[dict[str, Any]]] = {key: [] for key in _GROUPS}
    for row in reversed(rows):
        row["mobile_display"] = normalize.format_mobile(row["mobile"])
        row["snippet"] = _snippet(contents.get(row["id"]))
        due = row["next_follow_up_at"]
        group = "overdue" if due < today_starts else ("today" if due < tomorrow_starts else "upcoming")
        groups[group].append(row)
    return {
        "owner_id": owner_id,
        "today_date": today,
        **groups,
        "later": counts["later"],
        "counts": counts,
        "overdue_hidden": counts["overdue"] - len(groups["overdue"]),
    }
