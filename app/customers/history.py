"""A customer's change history as people read it: who did what, and each changed field with its old and new
value in words (names for owners, labels for options and choices) rather than stored ids and codes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from app.accounts.tables import Account
from app.core.tables import AuditLog
from app.customers.service import FIELDS
from app.db import Prepared
from app.i18n import _, format_date, format_datetime, format_money
from app.labels import label, option_label
from app.options.tables import OptionItem

# Bookkeeping columns that change with the real change and add nothing to read.
HIDDEN = {
    "updated_at",
    "name_key",
    "tier_pinned",
    "converted_at",
    "deleted_at",
    "customer",
    # A merge names the other customer by id; the entry itself says what happened.
    "merged_from",
    "merged_into",
}
OPTION_FIELDS = {"industry", "source_channel", "budget_band", "method"}
CHOICE_FIELDS = {"kind", "origin", "value_tier", "status", "rfm_segment"}
MOMENTS = {"happened_at", "next_follow_up_at"}

OTHER_LABELS: dict[str, Callable[[], str]] = {
    "kind": lambda: _("Kind"),
    "rfm_segment": lambda: _("RFM segment"),
    "owner": lambda: _("Owner"),
    "decision_maker": lambda: _("Decision maker"),
    "amount_fen": lambda: _("Amount"),
    "signed_on": lambda: _("Signed on"),
    "status": lambda: _("Status"),
    "notes": lambda: _("Notes"),
    "content": lambda: _("What was discussed"),
    "outcome": lambda: _("Outcome"),
    "method": lambda: _("Method"),
    "contact": lambda: _("Contact person"),
    "happened_at": lambda: _("When"),
    "next_follow_up_at": lambda: _("Next follow-up"),
    "rating": lambda: _("Rating"),
    "reply": lambda: _("Reply"),
}


def action_label(action: str, entity: str) -> str:
    """'created contact', 'changed', 'converted to member' … in the current language."""
    actions = {
        "create": _("created"),
        "update": _("changed"),
        "delete": _("deleted"),
        "restore": _("restored"),
        "convert": _("converted to member"),
        "assign": _("reassigned"),
        "reply": _("replied to"),
        "handle": _("marked handled"),
        "reopen": _("reopened"),
        "merge": _("merged"),
        "unmerge": _("merge undone"),
    }
    entities = {
        "customer": "",
        "contact": _("contact"),
        "project": _("project"),
        "follow_up": _("follow-up"),
        "feedback": _("feedback"),
    }
    return f"{actions.get(action, action)} {entities.get(entity, entity)}".strip()


def _field_label(field: str) -> str:
    if field in FIELDS:
        return FIELDS[field].label()
    return OTHER_LABELS[field]() if field in OTHER_LABELS else field


async def _names(entries: list[dict[str, Any]]) -> tuple[dict[int, str], dict[int, dict[str, Any]]]:
    """The owners and option entries the diffs mention, in one query each."""
    account_ids: set[int] = set()
    option_ids: set[int] = set()
    for entry in entries:
        for field, values in entry["diff"].items():
            ids = {value for value in values if isinstance(value, int)}
            if field == "owner":
                account_ids |= ids
            elif field in OPTION_FIELDS:
                option_ids |= ids
    accounts = (
        {
            row["id"]: row["name"]
            for row in await Account.select(Account.id, Account.name).where(Account.id.is_in(list(account_ids)))
        }
        if account_ids
        else {}
    )
    options = (
        {row["id"]: row for row in await OptionItem.select().where(OptionItem.id.is_in(list(option_ids)))}
        if option_ids
        else {}
    )
    return accounts, options


def _shown(field: str, value: Any, accounts: dict[int, str], options: dict[int, dict[str, Any]]) -> str:
    if field == "owner":
        return accounts.get(value, "") if value is not None else _("Public pool")
    if value is None or value == "":
        return ""
    if field in OPTION_FIELDS:
        return option_label(options.get(value))
    if field in CHOICE_FIELDS:
        return label(value)
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if field == "amount_fen":
        return format_money(int(value))
    if field == "signed_on":
        return format_date(date.fromisoformat(value))
    if field in MOMENTS:
        return format_datetime(datetime.fromisoformat(value))
    return str(value)


# How many changes the customer page shows.
HISTORY_LENGTH = 50
# Read on every customer page: its SQL is generated once (see db.Prepared).
_HISTORY = Prepared(
    lambda customer_id: (
        AuditLog.select(AuditLog.all_columns(), AuditLog.actor.name.as_alias("actor_name"))
        .where(AuditLog.customer_id == customer_id)
        .order_by(AuditLog.at, ascending=False)
        .order_by(AuditLog.id, ascending=False)
        .limit(HISTORY_LENGTH)
        .output(load_json=True)
    )
)


async def history_of(customer_id: int) -> list[dict[str, Any]]:
    """The customer's change history, newest first, including its contacts, projects, follow-ups and feedback.
    Each entry carries `what` (the action in words) and `changes`: (field label, old, new) as text."""
    entries = await _HISTORY(customer_id=customer_id)
    accounts, options = await _names(entries)
    for entry in entries:
        entry["what"] = action_label(entry["action"], entry["entity"])
        entry["changes"] = (
            [
                (_field_label(field), _shown(field, old, accounts, options), _shown(field, new, accounts, options))
                for field, (old, new) in entry["diff"].items()
                if field not in HIDDEN
            ]
            if entry["action"] in ("update", "assign", "merge", "unmerge")
            else []
        )
    return entries
