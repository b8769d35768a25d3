"""The write path every feature shares: an audit row and a search outbox row beside each change."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from app.core.tables import AuditLog, SearchOutbox


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
    indexed_as: tuple[str, int] | None = None,
    searchable: bool = True,
) -> None:
    """Write the audit row and queue the record for the search index. Call inside the write's transaction.

    `indexed_as` names the search document the change belongs to when it is not the record itself: a contact
    or a project is searched as part of its customer. Accounts and option lists are not searched.
    """
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
    if not searchable:
        return
    index_entity, index_id = indexed_as or (entity, entity_id)
    await SearchOutbox.insert(SearchOutbox(entity=index_entity, entity_id=index_id))
