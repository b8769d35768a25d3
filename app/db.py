"""Database plumbing shared by every service: transactions and engine-specific set-up."""

from __future__ import annotations

from piccolo.engine.base import Engine
from piccolo.engine.finder import engine_finder
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

# The largest id a row can have: Serial columns are 32-bit integers on PostgreSQL.
MAX_ID = 2**31 - 1


def engine() -> Engine:
    found = engine_finder()
    if found is None:
        raise RuntimeError("piccolo_conf.py defines no engine")
    return found


def is_sqlite() -> bool:
    return isinstance(engine(), SQLiteEngine)


def transaction():
    """One transaction for a write and its audit and outbox rows.

    On SQLite it is IMMEDIATE: a read-then-write in a DEFERRED transaction fails with "database is locked"
    when another writer got there first, instead of waiting for the busy timeout.
    """
    db = engine()
    if isinstance(db, SQLiteEngine):
        return db.transaction(transaction_type=TransactionType.immediate)
    return db.transaction()


async def prepare() -> None:
    """Engine settings that live in the database file: WAL lets readers go on while one writer writes."""
    if is_sqlite():
        await engine().run_ddl("PRAGMA journal_mode=WAL")
