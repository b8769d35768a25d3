"""Database plumbing shared by every service: transactions and engine-specific set-up."""

from __future__ import annotations

from piccolo.engine.base import Engine
from piccolo.engine.finder import engine_finder
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from app.config import get_settings

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


def read_transaction():
    """One read-only transaction for a whole page: every query sees the same snapshot (a tab's count agrees
    with its rows) and shares one connection instead of opening one per query.

    Only for requests that do not write: a write inside it on SQLite could not wait for another writer.
    """
    return engine().transaction()


async def prepare() -> None:
    """Start-up: WAL lets readers go on while one writer writes (it lives in the SQLite file, like the planner's
    statistics that PRAGMA optimize refreshes when needed); PostgreSQL gets a connection pool."""
    db = engine()
    if isinstance(db, SQLiteEngine):
        await db.run_ddl("PRAGMA journal_mode=WAL")
        await db.run_ddl("PRAGMA optimize")
    elif isinstance(db, PostgresEngine) and get_settings().database_pool:
        await db.start_connection_pool(min_size=2, max_size=10)


async def close() -> None:
    db = engine()
    if isinstance(db, PostgresEngine) and get_settings().database_pool:
        await db.close_connection_pool()


async def analyze() -> None:
    """Refresh the query planner's statistics, e.g. after a bulk load: without them SQLite may pick an index
    that makes a list page hundreds of times slower. On PostgreSQL, VACUUM also marks the loaded pages
    all-visible, without which a count cannot be answered from an index alone."""
    await engine().run_ddl("ANALYZE" if is_sqlite() else "VACUUM ANALYZE")
