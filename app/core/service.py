"""The write path every feature shares: an audit row and a search outbox row beside each change."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from app.core.tables import AuditLog, SearchOutbox
from search.documents import jobs_for_change


def _plain(value: Any) -> Any:
    """A value as it can be stored in the audit diff (JSON)."""
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


async def record_many(
    *, actor_id: int | None, entity: str, action: str, changes: list[tuple[int, dict[str, Any]]]
) -> None:
    """`record` for many records of one entity at once (a spreadsheet import, its undo): one statement for the
    audit rows and one for the outbox rows. `changes` holds (entity id, field-level diff); the entity is a
    customer, so each is its own customer_id."""
    if not changes:
        return
    await AuditLog.insert(
        *(
            AuditLog(
                actor=actor_id,
                entity=entity,
                entity_id=entity_id,
                customer_id=entity_id if entity == "customer" else None,
                action=action,
                diff=diff_,
            )
            for entity_id, diff_ in changes
        )
    )
    jobs = [
        job
        for entity_id, _ in changes
        for job in jobs_for_change(entity, entity_id, entity_id if entity == "customer" else None)
    ]
    if jobs:
        await SearchOutbox.insert(*(SearchOutbox(entity=name, entity_id=record_id) for name, record_id in jobs))
