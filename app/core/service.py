"""The write path every feature shares: an audit row and a search outbox row beside each change."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from app.core.tables import AuditLog, SearchOutbox
from app.db import insert_rows
from search.documents import jobs_for_change

# Most values of a diff are already plain: a spreadsheet import's 100,000 customers ask about a million times.
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    """A value as it can be stored in the audit diff (JSON)."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    """Field-level changes between two snapshots: {"field": [old, new]} for each field that differs."""
    changes = {}
    for field, value in new.items():
        before = _plain(old.get(field))
        after = _plain(value)
        if before != after:
            changes[field] = [before, after]
    return changes


async def record(
    *,
    actor_id: int | None,
    entity: str,
    entity_id: int,
    action: str,
    changes: dict[str, list[Any]] | None = None,
    customer_id: int | None = None,
) -> None:
    """Write the audit row and queue the search documents the change touches. Call inside the write's
    transaction, so the index can never miss a change that was committed."""
    await AuditLog.insert(
        AuditLog(
            actor=actor_id,
            entity=entity,
            entity_id=entity_id,
            customer_id=customer_id,
            action=action,
            diff=changes or {},
        )
    )
    jobs = jobs_for_change(entity, entity_id, customer_id)
    if jobs:
        await SearchOutbox.insert(*(SearchOutbox(entity=name, entity_id=record_id) for name, record_id in jobs))


# json.dumps with any option builds a new encoder on every call: an import writes one per audit row.
to_json = json.JSONEncoder(ensure_ascii=False).encode


async def record_many(
    *,
    actor_id: int | None,
    entity: str,
    action: str,
    changes: list[tuple[int, dict[str, Any]]],
    customer_ids: list[int] | None = None,
    queued: set[tuple[str, int]] | None = None,
) -> None:
    """`record` for many records at once (a spreadsheet import, its undo): the audit rows in one statement,
    the outbox rows in another. `changes` holds (record id, field-level diff); `customer_ids` the customer of each
    record, when they are no customers themselves (contacts). `queued` holds the search jobs this transaction
    has already queued, which are not queued twice (a new customer and its contact person are one document);
    the jobs queued here are added to it."""
    if not changes:
        return
    customers = customer_ids or [entity_id for entity_id, _ in changes]
    now = datetime.now(UTC)
    await insert_rows(
        AuditLog,
        [
            {
                "actor": actor_id,
                "entity": entity,
                "entity_id": entity_id,
                "customer_id": customer_id,
                "action": action,
                "diff": to_json(changes_),
                "at": now,
            }
            for (entity_id, changes_), customer_id in zip(changes, customers, strict=True)
        ],
    )
    jobs = list(
        dict.fromkeys(
            job
            for (entity_id, _), customer_id in zip(changes, customers, strict=True)
            for job in jobs_for_change(entity, entity_id, customer_id)
        )
    )
    if queued is not None:
        jobs = [job for job in jobs if job not in queued]
        queued.update(jobs)
    await insert_rows(
        SearchOutbox,
        [
            {"entity": name, "entity_id": record_id, "created_at": now, "attempts": 0, "last_error": ""}
            for name, record_id in jobs
        ],
    )
