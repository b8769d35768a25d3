"""Duplicates: the scan's state and requests, the pairs to review, "not a duplicate", and merging two customers
into one — every record of the merged customer moving to the survivor — with its exact undo. Supervisors and
admins only; for anyone else every pair and merge is NotVisible (404)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup
from piccolo.columns.combination import WhereRaw
from piccolo.table import Table

from app.accounts.service import CurrentUser
from app.chat.tables import ChatVisitor, Conversation
from app.core import schedule
from app.core import service as core
from app.core.tables import SearchOutbox
from app.customers import normalize
from app.customers.service import (
    FIELDS,
    FormErrors,
    NotVisible,
    get_customer,
    refresh_contact_dates,
    refresh_revenue,
)
from app.customers.tables import Contact, Customer, Kind, Project
from app.db import in_chunks, transaction
from app.duplicates import finder
from app.duplicates.tables import CustomerMerge, DuplicatePair, DuplicateScan, PairStatus
from app.feedback.tables import Feedback
from app.followups.tables import FollowUp
from app.i18n import _

log = logging.getLogger(__name__)

PAGE_SIZE = 25


def _require_supervisor(user: CurrentUser) -> None:
    if not user.is_supervisor:
        raise NotVisible("duplicates")


# ---------------------------------------------------------------------------------------------------------
# The scan: state, requests, the worker's schedule

# The worker scans every night after this time (Beijing time), and within seconds when a supervisor asks.
NIGHTLY_AT = time(3, 0)
_LOCK_KEY = 5_000_002


@dataclass
class ScanState:
    requested_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    customers: int = 0
    pairs: int = 0
    milliseconds: int = 0
    common: list[dict[str, Any]] | None = None

    @property
    def pending(self) -> bool:
        return self.requested_at is not None and (self.finished_at is None or self.requested_at > self.finished_at)


async def scan_state() -> ScanState:
    row = await DuplicateScan.select().where(DuplicateScan.id == finder.SCAN_ID).output(load_json=True).first()
    if row is None:
        return ScanState()
    return ScanState(
        requested_at=row["requested_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        customers=row["customers"],
        pairs=row["pairs"],
        milliseconds=row["milliseconds"],
        common=row["common"] or [],
    )


async def request_scan(user: CurrentUser) -> None:
    """Ask the worker to scan now."""
    _require_supervisor(user)
    await finder.ensure_scan_row()
    await DuplicateScan.update({DuplicateScan.requested_at: datetime.now(UTC)}).where(
        DuplicateScan.id == finder.SCAN_ID
    )


def due(state: ScanState, now: datetime) -> bool:
    """A scan is due when one was asked for, or the last one is older than the latest nightly start."""
    return state.pending or state.finished_at is None or state.finished_at < schedule.last_nightly(now, NIGHTLY_AT)


async def scan_if_due() -> finder.ScanResult | None:
    """Scan once if due; one worker at a time."""

    async def is_due(now: datetime) -> bool:
        return due(await scan_state(), now)

    return await schedule.run_if_due(is_due, finder.scan, lock_key=_LOCK_KEY)


async def run_schedule(*, stop: asyncio.Event | None = None) -> None:
    """The worker's duplicate scan schedule: look every few seconds whether a scan is due, until stopped."""
    await schedule.run_forever(
        scan_if_due,
        lambda result: f"{result.customers} customers, {result.pairs} pairs in {result.seconds:.1f} s",
        log=log,
        what="duplicate scan",
        stop=stop,
    )


# ---------------------------------------------------------------------------------------------------------
# Pairs to review

REASONS: dict[str, Callable[[], str]] = {
    "mobile": lambda: _("same mobile"),
    "email": lambda: _("same email"),
    "wechat": lambda: _("same WeChat"),
    "contact": lambda: _("same mobile, email or WeChat as a contact"),
    "name": lambda: _("same name"),
    "pinyin": lambda: _("name sounds the same"),
    "person_name": lambda: _("same person's name"),
    "person_pinyin": lambda: _("person's name sounds the same"),
    "company": lambda: _("same company"),
    "city": lambda: _("same city"),
}


def reason_labels(reasons: list[str]) -> list[str]:
    return [REASONS[reason]() if reason in REASONS else reason for reason in reasons]


TABS = ("open", "dismissed")


@dataclass
class PairPage:
    pairs: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    tab: str
    customer_id: int | None
    reason: str = ""

    def query(self, **changes: Any) -> str:
        """The list's URL query with some parts changed, e.g. query(page=2)."""
        parts = {"tab": self.tab, "customer": self.customer_id, "reason": self.reason, "page": None, **changes}
        defaults = {"tab": "open", "page": 1}
        return urlencode({key: value for key, value in parts.items() if value and value != defaults.get(key)})


_PAIR_COLUMNS = (
    DuplicatePair.id,
    DuplicatePair.customer_a,
    DuplicatePair.customer_b,
    DuplicatePair.score,
    DuplicatePair.reasons,
    DuplicatePair.status,
    DuplicatePair.found_at,
    DuplicatePair.decided_at,
    DuplicatePair.decided_by.name.as_alias("decided_by_name"),
    DuplicatePair.customer_a.name.as_alias("a_name"),
    DuplicatePair.customer_a.kind.as_alias("a_kind"),
    DuplicatePair.customer_a.company.as_alias("a_company"),
    DuplicatePair.customer_a.mobile.as_alias("a_mobile"),
    DuplicatePair.customer_a.city.as_alias("a_city"),
    DuplicatePair.customer_a.owner.name.as_alias("a_owner_name"),
    DuplicatePair.customer_b.name.as_alias("b_name"),
    DuplicatePair.customer_b.kind.as_alias("b_kind"),
    DuplicatePair.customer_b.company.as_alias("b_company"),
    DuplicatePair.customer_b.mobile.as_alias("b_mobile"),
    DuplicatePair.customer_b.city.as_alias("b_city"),
    DuplicatePair.customer_b.owner.name.as_alias("b_owner_name"),
)


def _live_pairs(status: str) -> list[Any]:
    """Pairs of this status whose two customers both still exist (a merged or deleted customer's pairs are moot)."""
    return [
        DuplicatePair.status == status,
        DuplicatePair.customer_a.deleted_at.is_null(),
        DuplicatePair.customer_b.deleted_at.is_null(),
    ]


async def list_pairs(
    user: CurrentUser, *, tab: str = "open", page: int = 1, customer_id: int | None = None, reason: str = ""
) -> PairPage:
    """The pairs to review, most certain first; `customer_id` keeps those of one customer, `reason` those found
    for that reason (an unknown reason is ignored)."""
    _require_supervisor(user)
    if tab not in TABS:
        raise NotVisible(tab)
    clauses = _live_pairs(tab)
    if customer_id is not None:
        clauses.append((DuplicatePair.customer_a == customer_id) | (DuplicatePair.customer_b == customer_id))
    reason = reason if reason in REASONS else ""
    if reason:
        # The reasons are a JSON list of known codes: the quoted code tells 'name' from 'person_name'.
        clauses.append(WhereRaw("CAST(duplicate_pair.reasons AS TEXT) LIKE {}", f'%"{reason}"%'))
    total = await DuplicatePair.count().where(*clauses)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(max(page, 1), pages)
    rows = (
        await DuplicatePair.select(*_PAIR_COLUMNS)
        .where(*clauses)
        .order_by(DuplicatePair.score, ascending=False)
        .order_by(DuplicatePair.id)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
        .output(load_json=True)
    )
    for row in rows:
        row["reason_labels"] = reason_labels(row["reasons"] or [])
    return PairPage(rows, total, page, pages, tab, customer_id, reason)


async def open_pairs_of(customer_id: int) -> int:
    """How many open pairs name this customer, for the link on its page."""
    return await DuplicatePair.count().where(
        *_live_pairs(PairStatus.open),
        (DuplicatePair.customer_a == customer_id) | (DuplicatePair.customer_b == customer_id),
    )


async def get_pair(user: CurrentUser, pair_id: int) -> dict[str, Any]:
    """An open or dismissed pair of two live customers; NotVisible otherwise."""
    _require_supervisor(user)
    row = (
        await DuplicatePair.select(*_PAIR_COLUMNS)
        .where(
            DuplicatePair.id == pair_id,
            DuplicatePair.status != PairStatus.merged,
            DuplicatePair.customer_a.deleted_at.is_null(),
            DuplicatePair.customer_b.deleted_at.is_null(),
        )
        .output(load_json=True)
        .first()
    )
    if row is None:
        raise NotVisible(pair_id)
    row["reason_labels"] = reason_labels(row["reasons"] or [])
    return row


async def _decide(user: CurrentUser, pair_id: int, status: PairStatus, allowed_from: PairStatus) -> None:
    _require_supervisor(user)
    decided = (
        await DuplicatePair.update(
            {
                DuplicatePair.status: status,
                DuplicatePair.decided_by: user.account_id,
                DuplicatePair.decided_at: datetime.now(UTC),
            }
        )
        .where(DuplicatePair.id == pair_id, DuplicatePair.status == allowed_from)
        .returning(DuplicatePair.id)
    )
    if not decided:
        raise NotVisible(pair_id)


async def dismiss_pair(user: CurrentUser, pair_id: int) -> None:
    """ "Not a duplicate": the pair leaves the list and later scans do not bring it back."""
    await _decide(user, pair_id, PairStatus.dismissed, PairStatus.open)


async def reopen_pair(user: CurrentUser, pair_id: int) -> None:
    """Take back a dismissal: the pair is to be reviewed again."""
    await _decide(user, pair_id, PairStatus.open, PairStatus.dismissed)


# ---------------------------------------------------------------------------------------------------------
# Comparing two customers field by field


@dataclass(frozen=True)
class MergeField:
    """One choice on the merge form: the columns that go together (a province with its city and address)."""

    key: str
    label: Callable[[], str]
    columns: tuple[str, ...]
    # Free text may keep both sides, one after the other.
    text: bool = False


def _field(name: str, *, text: bool = False) -> MergeField:
    return MergeField(name, FIELDS[name].label, (name,), text)


MERGE_FIELDS: list[MergeField] = [
    _field("name"),
    _field("company"),
    _field("title"),
    _field("mobile"),
    _field("phone"),
    _field("email"),
    _field("wechat"),
    MergeField("place", lambda: _("Province, city and address"), ("province", "city", "address")),
    _field("origin"),
    _field("industry"),
    _field("source_channel"),
    MergeField("campaign", lambda: _("First-touch campaign"), ("utm_source", "utm_medium", "utm_campaign")),
    _field("budget_band"),
    _field("needs", text=True),
    _field("characteristics", text=True),
    _field("consumption_habits", text=True),
    MergeField("owner", lambda: _("Owner"), ("owner",)),
]
_MERGE_FIELDS = {field.key: field for field in MERGE_FIELDS}
BOTH = "both"


def _values(customer: dict[str, Any], field: MergeField) -> tuple[Any, ...]:
    return tuple(customer[column] for column in field.columns)


def _empty(values: tuple[Any, ...]) -> bool:
    return all(value in (None, "") for value in values)


def default_pick(field: MergeField, first: dict[str, Any], second: dict[str, Any]) -> int:
    """The side a field keeps unless the supervisor says otherwise: the filled-in one, else the one of the
    customer changed more recently."""
    if _empty(_values(second, field)):
        return first["id"]
    if _empty(_values(first, field)):
        return second["id"]
    return first["id"] if first["updated_at"] >= second["updated_at"] else second["id"]


def default_survivor(first: dict[str, Any], second: dict[str, Any]) -> int:
    """The record that stays: a member rather than a prospect, else the one we have known longer."""
    if first["kind"] != second["kind"]:
        return first["id"] if first["kind"] == Kind.member.value else second["id"]
    return min((first["created_at"], first["id"]), (second["created_at"], second["id"]))[1]


@dataclass
class Comparison:
    """What the pair page shows: each differing field with both sides' display, and the counts of what moves."""

    first: dict[str, Any]
    second: dict[str, Any]
    differing: list[dict[str, Any]]
    same: list[dict[str, Any]]
    counts: dict[int, dict[str, int]]
    survivor: int
    picks: dict[str, str]


def _shown(customer: dict[str, Any], field: MergeField) -> str | Markup:
    from app.labels import customer_field

    if field.key == "owner":
        return customer["owner_name"] or _("public pool")
    if field.key in ("place", "campaign"):
        separator = " " if field.key == "place" else " / "
        return separator.join(str(value) for value in _values(customer, field) if value)
    return customer_field(customer, FIELDS[field.key])


# Every table whose rows belong to a customer and move with a merge, as the merge row records them.
MOVABLE: dict[str, type[Table]] = {
    "contact": Contact,
    "project": Project,
    "follow_up": FollowUp,
    "feedback": Feedback,
    "conversation": Conversation,
    "chat_visitor": ChatVisitor,
}

_SOFT_DELETED = {"contact", "project", "follow_up", "feedback"}


async def _counts(customer_id: int) -> dict[str, int]:
    counts = {}
    for name, table in MOVABLE.items():
        clauses = [table.customer == customer_id]  # type: ignore[attr-defined]
        if name in _SOFT_DELETED:
            clauses.append(table.deleted_at.is_null())  # type: ignore[attr-defined]
        counts[name] = await table.count().where(*clauses)
    return counts


async def compare(user: CurrentUser, pair: dict[str, Any], form: dict[str, str] | None = None) -> Comparison:
    """Both customers of a pair side by side, with the survivor and each field's pick (the form's, where it
    was sent back with an error)."""
    first = await get_customer(user, pair["customer_a"])
    second = await get_customer(user, pair["customer_b"])
    differing, same = [], []
    picks: dict[str, str] = {}
    for field in MERGE_FIELDS:
        entry = {
            "field": field,
            "label": field.label(),
            "first": _shown(first, field),
            "second": _shown(second, field),
        }
        if _values(first, field) == _values(second, field):
            same.append(entry)
            continue
        differing.append(entry)
        picks[field.key] = str(default_pick(field, first, second))
    survivor = default_survivor(first, second)
    if form:
        picks.update({key: form[f"pick_{key}"] for key in picks if f"pick_{key}" in form})
        with contextlib.suppress(ValueError):
            survivor = int(form.get("survivor", survivor))
    counts = {first["id"]: await _counts(first["id"]), second["id"]: await _counts(second["id"])}
    return Comparison(first, second, differing, same, counts, survivor, picks)


# ---------------------------------------------------------------------------------------------------------
# Merge and undo


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


_DATETIMES = {"converted_at"}


def _stored(column: str, value: Any) -> Any:
    if column in _DATETIMES and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def _joined(first: str, second: str) -> str:
    parts = [part for part in (first.strip(), second.strip()) if part]
    if len(parts) == 2 and parts[0] == parts[1]:
        return parts[0]
    return "\n\n".join(parts)


def _merged_values(
    survivor: dict[str, Any], merged: dict[str, Any], form: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The survivor's columns after the merge as the form chose them, and the messages for refused picks."""
    after: dict[str, Any] = {}
    errors: dict[str, str] = {}
    ids = {str(survivor["id"]): survivor, str(merged["id"]): merged}
    for field in MERGE_FIELDS:
        if _values(survivor, field) == _values(merged, field):
            continue
        pick = form.get(f"pick_{field.key}") or str(default_pick(field, survivor, merged))
        if pick == BOTH and field.text:
            (column,) = field.columns
            after[column] = _joined(survivor[column], merged[column])
        elif pick in ids:
            for column in field.columns:
                after[column] = ids[pick][column]
        else:
            errors[f"pick_{field.key}"] = _("Choose which value to keep.")
    if merged["kind"] == Kind.member.value:
        # Working together with either record makes the customer a member, since the earliest conversion.
        after["kind"] = Kind.member.value
        dates = [value for value in (survivor["converted_at"], merged["converted_at"]) if value is not None]
        after["converted_at"] = min(dates) if dates else None
    if "name" in after:
        after["name_key"] = normalize.name_key(after["name"])
    return {column: value for column, value in after.items() if survivor[column] != value}, errors


async def _move(table: type[Table], ids: list[int], to_customer: int) -> None:
    for chunk in in_chunks(ids):
        await table.update({table.customer: to_customer}).where(table.id.is_in(chunk))  # type: ignore[attr-defined]


async def _queue_moved(moved: dict[str, list[int]], customer_id: int) -> None:
    """The follow-ups and feedback that moved name their customer in the search index: rebuild them."""
    jobs = [("follow_up", record_id) for record_id in moved.get("follow_up", [])]
    jobs += [("feedback", record_id) for record_id in moved.get("feedback", [])]
    for start in range(0, len(jobs), 1000):
        await SearchOutbox.insert(
            *(SearchOutbox(entity=entity, entity_id=entity_id) for entity, entity_id in jobs[start : start + 1000])
        )


async def _lock(*customer_ids: int) -> None:
    """Write the two customers' rows before reading them: on PostgreSQL that locks them, so a merge of one of
    them with a third customer at the same moment waits and then sees this one done (SQLite's IMMEDIATE already
    lets one writer in at a time)."""
    await Customer.update({Customer.updated_at: Customer.updated_at}).where(Customer.id.is_in(list(customer_ids)))


async def merge(user: CurrentUser, pair_id: int, form: dict[str, str]) -> int:
    """Fold one customer of the pair into the other, in one transaction: the survivor takes the chosen values,
    every contact, project, follow-up, feedback, chat conversation and chat visitor of the other moves to it,
    the other is soft-deleted, both are audited. Returns the merge's id, for its undo."""
    _require_supervisor(user)
    async with transaction():
        now = datetime.now(UTC)
        # Claim the pair first: of two supervisors merging it at once, the second finds it merged (404).
        claimed = (
            await DuplicatePair.update(
                {
                    DuplicatePair.status: PairStatus.merged,
                    DuplicatePair.decided_by: user.account_id,
                    DuplicatePair.decided_at: now,
                }
            )
            .where(DuplicatePair.id == pair_id, DuplicatePair.status == PairStatus.open)
            .returning(DuplicatePair.customer_a, DuplicatePair.customer_b)
        )
        if not claimed:
            raise NotVisible(pair_id)
        pair = claimed[0]
        await _lock(pair["customer_a"], pair["customer_b"])
        rows = {
            row["id"]: row
            for row in await Customer.select().where(
                Customer.id.is_in([pair["customer_a"], pair["customer_b"]]), Customer.deleted_at.is_null()
            )
        }
        if len(rows) != 2:
            raise NotVisible(pair_id)
        try:
            survivor_id = int(form.get("survivor", ""))
        except ValueError:
            survivor_id = 0
        if survivor_id not in rows:
            raise FormErrors({"survivor": _("Choose the record that stays.")})
        merged_id = pair["customer_b"] if survivor_id == pair["customer_a"] else pair["customer_a"]
        survivor, merged = rows[survivor_id], rows[merged_id]
        after, errors = _merged_values(survivor, merged, form)
        if errors:
            raise FormErrors(errors)
        before = {column: survivor[column] for column in after}
        if after:
            await Customer.update({**after, "updated_at": now}).where(Customer.id == survivor_id)
        moved: dict[str, list[int]] = {}
        for name, table in MOVABLE.items():
            ids = [
                row["id"]
                for row in await table.select(table.id).where(table.customer == merged_id)  # type: ignore[attr-defined]
            ]
            if ids:
                await _move(table, ids, survivor_id)
                moved[name] = ids
        await Customer.update({Customer.deleted_at: now, Customer.updated_at: now}).where(Customer.id == merged_id)
        for customer_id in (survivor_id, merged_id):
            await refresh_contact_dates(customer_id)
            await refresh_revenue(customer_id)
        record = CustomerMerge(
            survivor=survivor_id,
            merged=merged_id,
            pair=pair_id,
            actor=user.account_id,
            merged_at=now,
            survivor_before={column: _plain(value) for column, value in before.items()},
            moved=moved,
        )
        await record.save()
        await core.record(
            actor_id=user.account_id,
            entity="customer",
            entity_id=survivor_id,
            customer_id=survivor_id,
            action="merge",
            changes={**core.diff(before, after), "merged_from": [None, merged_id]},
        )
        await core.record(
            actor_id=user.account_id,
            entity="customer",
            entity_id=merged_id,
            customer_id=merged_id,
            action="merge",
            changes={"deleted_at": [None, now.isoformat()], "merged_into": [None, survivor_id]},
        )
        await _queue_moved(moved, survivor_id)
    return record.id


class CannotUndo(ValueError):
    """The merge cannot be undone any more; the message says why."""


async def undo_merge(user: CurrentUser, merge_id: int) -> None:
    """Put both customers back as they were: the merged one restored, the records that moved back with it, the
    survivor's fields as before the merge. Records added to the survivor since stay with it."""
    _require_supervisor(user)
    async with transaction():
        now = datetime.now(UTC)
        # Claim the undo first: of two undos at once, the second finds it undone (404).
        claimed = (
            await CustomerMerge.update({CustomerMerge.undone_at: now, CustomerMerge.undone_by: user.account_id})
            .where(CustomerMerge.id == merge_id, CustomerMerge.undone_at.is_null())
            .returning(CustomerMerge.id)
        )
        if not claimed:
            raise NotVisible(merge_id)
        row = await CustomerMerge.select().where(CustomerMerge.id == merge_id).output(load_json=True).first()
        survivor_id, merged_id = row["survivor"], row["merged"]
        await _lock(survivor_id, merged_id)
        states = {
            state["id"]: state for state in await Customer.select().where(Customer.id.is_in([survivor_id, merged_id]))
        }
        if states[survivor_id]["deleted_at"] is not None:
            raise CannotUndo(_("The customer that stayed has been deleted since; restore it first."))
        if states[merged_id]["deleted_at"] is None:
            raise CannotUndo(_("The merged customer has been restored already."))
        moved: dict[str, list[int]] = row["moved"] or {}
        for name, ids in moved.items():
            table = MOVABLE[name]
            for chunk in in_chunks(ids):
                await table.update({table.customer: merged_id}).where(  # type: ignore[attr-defined]
                    table.id.is_in(chunk),
                    table.customer == survivor_id,  # type: ignore[attr-defined]
                )
        before = {column: _stored(column, value) for column, value in (row["survivor_before"] or {}).items()}
        current = states[survivor_id]
        if before:
            await Customer.update({**before, "updated_at": now}).where(Customer.id == survivor_id)
        await Customer.update({Customer.deleted_at: None, Customer.updated_at: now}).where(Customer.id == merged_id)
        for customer_id in (survivor_id, merged_id):
            await refresh_contact_dates(customer_id)
            await refresh_revenue(customer_id)
        if row["pair"] is not None:
            await DuplicatePair.update(
                {DuplicatePair.status: PairStatus.open, DuplicatePair.decided_by: None, DuplicatePair.decided_at: None}
            ).where(DuplicatePair.id == row["pair"])
        await core.record(
            actor_id=user.account_id,
            entity="customer",
            entity_id=survivor_id,
            customer_id=survivor_id,
            action="unmerge",
            changes={
                **core.diff({column: current[column] for column in before}, before),
                "merged_from": [merged_id, None],
            },
        )
        await core.record(
            actor_id=user.account_id,
            entity="customer",
            entity_id=merged_id,
            customer_id=merged_id,
            action="unmerge",
            changes={
                "deleted_at": [states[merged_id]["deleted_at"].isoformat(), None],
                "merged_into": [survivor_id, None],
            },
        )
        await _queue_moved(moved, merged_id)


async def list_merges(user: CurrentUser, limit: int = 100) -> list[dict[str, Any]]:
    """The latest merges, newest first, with whether each can still be undone."""
    _require_supervisor(user)
    return (
        await CustomerMerge.select(
            CustomerMerge.id,
            CustomerMerge.survivor,
            CustomerMerge.merged,
            CustomerMerge.merged_at,
            CustomerMerge.undone_at,
            CustomerMerge.survivor.name.as_alias("survivor_name"),
            CustomerMerge.merged.name.as_alias("merged_name"),
            CustomerMerge.actor.name.as_alias("actor_name"),
            CustomerMerge.undone_by.name.as_alias("undone_by_name"),
        )
        .order_by(CustomerMerge.merged_at, ascending=False)
        .order_by(CustomerMerge.id, ascending=False)
        .limit(limit)
    )
