"""Database plumbing shared by every service: transactions and engine-specific set-up."""

from __future__ import annotations

import sqlite3
import threading
from functools import cache
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.finder import engine_finder
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.querystring import QueryString

from app.config import get_settings

# The largest id a row can have: Serial columns are 32-bit integers on PostgreSQL.
MAX_ID = 2**31 - 1


@cache
def engine() -> Engine:
    """The engine piccolo_conf.py defines (found once per process: looking it up again costs more than a poll)."""
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


# SQLite connections kept open for `lookup`, per thread and database file.
_readers = threading.local()


def _sqlite_reader(path: str) -> sqlite3.Connection:
    connections: dict[str, sqlite3.Connection] = _readers.__dict__.setdefault("connections", {})
    connection = connections.get(path)
    if connection is None:
        connection = sqlite3.connect(path, timeout=15, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connections[path] = connection
    return connection


async def lookup(sql: str, *args: Any) -> dict[str, Any] | None:
    """One row by an indexed lookup, committed data only, for the hottest read paths (the chat's "anything
    new?" poll). Not for use inside a write transaction: it does not see the transaction's own changes.

    Piccolo opens a new SQLite connection, with a thread of its own, for every query outside a transaction, which
    costs far more than the lookup itself. Here the lookup runs on a connection this thread keeps open, directly:
    an indexed read takes microseconds, and in WAL mode it never waits for a writer. PostgreSQL takes a
    connection from the pool. `sql` uses Piccolo's {} placeholders.
    """
    db = engine()
    if isinstance(db, SQLiteEngine):
        row = _sqlite_reader(db.path).execute(sql.replace("{}", "?"), args).fetchone()
        return dict(row) if row is not None else None
    rows = await db.run_querystring(QueryString(sql, *args))
    return rows[0] if rows else None
