"""Database plumbing shared by every service: transactions and engine-specific set-up."""

from __future__ import annotations

import sqlite3
import threading
from functools import cache
from typing import Any

import aiosqlite
from piccolo.engine.base import Engine
from piccolo.engine.finder import engine_finder
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType, dict_factory
from piccolo.querystring import QueryString

from app.config import get_settings


class _Lent:
    """A pooled aiosqlite connection as Piccolo sees it: everything goes to the connection, but closing it gives it
    back to the pool."""

    __slots__ = ("_connection", "_engine")

    def __init__(self, connection: aiosqlite.Connection, engine: PooledSQLiteEngine) -> None:
        object.__setattr__(self, "_connection", connection)
        object.__setattr__(self, "_engine", engine)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._connection, name, value)

    async def close(self) -> None:
        await self._engine.give_back(self._connection)


class PooledSQLiteEngine(SQLiteEngine):
    """Piccolo's SQLite engine, keeping its connections open between queries and transactions.

    Piccolo opens a new connection for every transaction and for every query outside one (a thread, the file, a
    PRAGMA: about 2 ms here, more than most queries), and repeats `PRAGMA foreign_keys` before every query inside a
    transaction. Here connections are set up once and lent out one borrower at a time; one still inside a
    transaction when given back (an interrupted commit) is closed instead of reused.
    """

    POOL_SIZE = 8

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._idle: list[aiosqlite.Connection] = []
        # Older SQLite has no RETURNING, and Piccolo then reads an insert's id in a second query of its own.
        if sqlite3.sqlite_version_info < (3, 35):
            raise RuntimeError("Kehu needs SQLite 3.35 or newer")

    async def get_connection(self) -> Any:
        connection = self._idle.pop() if self._idle else await self._open()
        return _Lent(connection, self)

    async def _open(self) -> aiosqlite.Connection:
        connection = aiosqlite.connect(**self.connection_kwargs)
        # aiosqlite's thread would keep the process alive at exit while the connection waits in the pool. An idle
        # connection holds no transaction, so ending it with the process loses nothing.
        thread = getattr(connection, "_thread", None)
        if thread is not None:
            thread.daemon = True
        await connection
        connection.row_factory = dict_factory
        await connection.execute("PRAGMA foreign_keys = 1")
        return connection

    async def close_idle(self) -> None:
        while self._idle:
            await self._idle.pop().close()

    async def give_back(self, connection: aiosqlite.Connection) -> None:
        if connection.in_transaction or len(self._idle) >= self.POOL_SIZE:
            await connection.close()
        else:
            self._idle.append(connection)

    async def _run_in_new_connection(
        self, query: str, args: list[Any] | None = None, query_type: str = "generic", table: Any = None
    ) -> Any:
        connection = await self.get_connection()
        try:
            async with connection.execute(query, args or []) as cursor:
                await connection.commit()
                return await cursor.fetchall()
        finally:
            await connection.close()

    async def _run_in_existing_connection(
        self, connection: Any, query: str, args: list[Any] | None = None, query_type: str = "generic", table: Any = None
    ) -> Any:
        # The connection got its PRAGMA when it was opened.
        async with connection.execute(query, args or []) as cursor:
            return await cursor.fetchall()


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
    if isinstance(db, PooledSQLiteEngine):
        await db.close_idle()
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
    connection from the pool and asks asyncpg directly, whose per-connection statement cache then skips the parse
    and plan of a statement it has seen. `sql` uses Piccolo's {} placeholders.
    """
    db = engine()
    if isinstance(db, SQLiteEngine):
        row = _sqlite_reader(db.path).execute(sql.replace("{}", "?"), args).fetchone()
        return dict(row) if row is not None else None
    pool = getattr(db, "pool", None)
    if pool is None:
        rows = await db.run_querystring(QueryString(sql, *args))
        return rows[0] if rows else None
    async with pool.acquire() as connection:
        record = await connection.fetchrow(_numbered(sql), *args)
    return dict(record) if record is not None else None


@cache
def _numbered(sql: str) -> str:
    """Piccolo's {} placeholders as PostgreSQL's $1, $2, …"""
    parts = sql.split("{}")
    return "".join(part + (f"${index}" if index < len(parts) else "") for index, part in enumerate(parts, 1))
