"""Database plumbing shared by every service: transactions and engine-specific set-up."""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import re
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import datetime
from functools import cache
from typing import Any, Generic, TypeVar

import aiosqlite
from piccolo.columns import Timestamp, Timestamptz
from piccolo.engine.base import Engine
from piccolo.engine.finder import engine_finder
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory
from piccolo.query.base import Query
from piccolo.query.proxy import Proxy
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


class _InlineReads:
    """A SQLite connection for one page's reads, run on the event loop's own thread.

    Handing a statement to aiosqlite's thread and back costs about half a millisecond here, three times over for
    one query (execute, fetch, close), while the indexed reads a page makes take tens of microseconds. So a page's
    reads run right here, and any statement still running after `BUDGET` seconds is interrupted and run again in a
    worker thread, so one long report query never holds up everyone else's requests. Only reads: a write inside
    a page's read transaction is refused (GET handlers never write).
    """

    BUDGET = 0.003
    # SQLite asks whether to go on every STEP virtual machine instructions.
    STEP = 1000
    READS = ("SELECT", "WITH", "EXPLAIN")

    __slots__ = ("_deadline", "_engine", "_interrupted", "connection")

    def __init__(self, connection: sqlite3.Connection, engine: PooledSQLiteEngine) -> None:
        self.connection = connection
        self._engine = engine
        self._deadline = 0.0
        self._interrupted = False

    async def execute(self, sql: str) -> None:
        """BEGIN, COMMIT and ROLLBACK, as Piccolo's transaction sends them."""
        self.connection.execute(sql)

    async def close(self) -> None:
        self._engine.give_back_inline(self)

    async def fetch(self, query: str, args: list[Any]) -> list[dict[str, Any]]:
        if not query.lstrip().upper().startswith(self.READS):
            raise RuntimeError("a write inside a page's read transaction: GET handlers must not write")
        self._deadline = time.perf_counter() + self.BUDGET
        self._interrupted = False
        self.connection.set_progress_handler(self._over_budget, self.STEP)
        try:
            return self.connection.execute(query, args).fetchall()
        except sqlite3.OperationalError:
            if not self._interrupted:
                raise
        finally:
            self.connection.set_progress_handler(None, 0)
        # A read has no effect to undo: the same statement runs again, at its own pace, in a worker thread.
        return await asyncio.to_thread(lambda: self.connection.execute(query, args).fetchall())

    def _over_budget(self) -> bool:
        self._interrupted = time.perf_counter() > self._deadline
        return self._interrupted


class _InlineReadTransaction(SQLiteTransaction):
    """Piccolo's deferred transaction on an inline read connection: a snapshot for a whole page."""

    async def get_connection(self) -> Any:
        engine = self.engine
        assert isinstance(engine, PooledSQLiteEngine)
        return engine.borrow_inline()


class PooledSQLiteEngine(SQLiteEngine):
    """Piccolo's SQLite engine, keeping its connections open between queries and transactions.

    Piccolo opens a new connection for every transaction and for every query outside one (a thread, the file, a
    PRAGMA: about 2 ms here, more than most queries), and repeats `PRAGMA foreign_keys` before every query inside a
    transaction. Here connections are set up once and lent out one borrower at a time; one still inside a
    transaction when given back (an interrupted commit) is closed instead of reused. A statement makes one trip to
    aiosqlite's thread instead of three. Page reads take the inline path of `_InlineReads`.
    """

    POOL_SIZE = 8

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._idle: list[aiosqlite.Connection] = []
        self._idle_inline: list[_InlineReads] = []
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

    def borrow_inline(self) -> _InlineReads:
        if self._idle_inline:
            return self._idle_inline.pop()
        connection = sqlite3.connect(**self.connection_kwargs, check_same_thread=False)
        connection.row_factory = dict_factory
        return _InlineReads(connection, self)

    def give_back_inline(self, reads: _InlineReads) -> None:
        if reads.connection.in_transaction or len(self._idle_inline) >= self.POOL_SIZE:
            reads.connection.close()
        else:
            self._idle_inline.append(reads)

    def read_transaction(self) -> SQLiteTransaction:
        return _InlineReadTransaction(engine=self)

    async def close_idle(self) -> None:
        while self._idle:
            await self._idle.pop().close()
        while self._idle_inline:
            self._idle_inline.pop().connection.close()

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
            # Outside a transaction every statement commits itself (isolation_level None).
            return await connection.execute_fetchall(query, args or [])
        finally:
            await connection.close()

    async def _run_in_existing_connection(
        self, connection: Any, query: str, args: list[Any] | None = None, query_type: str = "generic", table: Any = None
    ) -> Any:
        if isinstance(connection, _InlineReads):
            return await connection.fetch(query, args or [])
        # The connection got its PRAGMA when it was opened.
        return await connection.execute_fetchall(query, args or [])


class Param:
    """A named value of a prepared query, filled in on each run."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


Q = TypeVar("Q", bound=Query | Proxy)  # type: ignore[type-arg]


class Prepared(Generic[Q]):
    """A Piccolo query whose SQL is generated once: Piccolo's `freeze`, with parameters.

    Piccolo generates a query's SQL afresh on every run, which for a select with a few columns and joins costs
    more than SQLite takes to answer it (half a millisecond and more here), on every page. `build` makes the
    query with a `Param` in place of each value (its arguments are the parameter names); the SQL is generated on
    first use, and each call only puts the values in place. The values go to the database driver as they are:
    no Enum or Table instance is turned into its value, and a list cannot stand for `IN (...)` (a fixed number
    of parameters can: `parameters` names them when `build` takes them as keywords).
    """

    def __init__(self, build: Callable[..., Q], *, parameters: Sequence[str] = ()) -> None:
        self._build = build
        self._parameters = parameters
        self._template: Q | None = None
        self._compiled: list[tuple[QueryString, str, list[Any]]] = []

    def __call__(self, **values: Any) -> Q:
        if self._template is None:
            names = self._parameters or inspect.signature(self._build).parameters
            template = self._build(**{name: Param(name) for name in names})
            inner = template.query if isinstance(template, Proxy) else template
            compiled = [(qs, *qs.compile_string(engine_type=inner.engine_type)) for qs in inner.querystrings]
            self._compiled, self._template = compiled, template
        template = self._template
        # A proxy such as `.first()` wraps the query that runs: both are copied, the template stays as it is.
        inner = copy.copy(template.query if isinstance(template, Proxy) else template)
        inner._frozen_querystrings = [self._bind(qs, sql, args, values) for qs, sql, args in self._compiled]
        return type(template)(inner) if isinstance(template, Proxy) else inner  # type: ignore[return-value]

    @staticmethod
    def _bind(querystring: QueryString, sql: str, args: list[Any], values: dict[str, Any]) -> QueryString:
        bound = QueryString("", query_type=querystring.query_type, table=querystring.table)
        bound._frozen_compiled_strings = (sql, [values[arg.name] if isinstance(arg, Param) else arg for arg in args])
        return bound


class _SnapshotReadTransaction(PostgresTransaction):
    """A PostgreSQL transaction that reads one snapshot (REPEATABLE READ) and refuses writes (READ ONLY)."""

    async def begin(self) -> None:
        self.transaction = self.connection.transaction(isolation="repeatable_read", readonly=True)
        await self.transaction.start()


class _SharedSnapshotTransaction(_SnapshotReadTransaction):
    """A read transaction on a connection of its own that reads the snapshot another read transaction exported:
    both see exactly the same data."""

    def __init__(self, engine: PostgresEngine, connection: Any, snapshot: str) -> None:
        super().__init__(engine=engine)
        # A transaction of its own, not a no-op inside the one whose snapshot it shares.
        self._parent = None
        self._lent = connection
        self._snapshot = snapshot

    async def get_connection(self) -> Any:
        return self._lent

    async def begin(self) -> None:
        await super().begin()
        await self.connection.execute(f"SET TRANSACTION SNAPSHOT '{self._snapshot}'")

    async def __aenter__(self) -> _SharedSnapshotTransaction:
        try:
            return await super().__aenter__()  # type: ignore[return-value]
        except BaseException:
            # Piccolo gives the connection back only when leaving a transaction it could begin.
            await (self.engine.pool.release(self._lent) if self.engine.pool else self._lent.close())
            raise


# What pg_export_snapshot() returns, e.g. 00000003-0000001B-1: checked before it goes into SET TRANSACTION
# SNAPSHOT, which takes no parameters.
_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")
T = TypeVar("T")


async def side_by_side(*calls: Callable[[], Awaitable[T]]) -> list[T]:
    """The results of independent reads of one page, run at the same time where the engine allows it.

    Inside a PostgreSQL read_transaction, each read beyond the first gets a pooled connection of its own that
    reads the transaction's exported snapshot (pg_export_snapshot), so together they see what one transaction
    would, while the statements use more than one core. A read that finds no connection free runs on the
    page's own connection after the ones before it, rather than wait: pages waiting for connections that other
    waiting pages hold would wait forever. Elsewhere (SQLite, outside a read transaction) the reads run one
    after another on the one connection.
    """
    db = engine()
    current = db.current_transaction.get()
    if len(calls) < 2 or not isinstance(db, PostgresEngine) or not isinstance(current, _SnapshotReadTransaction):
        return [await call() for call in calls]
    snapshot = await current.connection.fetchval("SELECT pg_export_snapshot()")
    if not _SNAPSHOT_ID.match(snapshot):
        raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
    own = asyncio.Lock()

    async def on_own(call: Callable[[], Awaitable[T]]) -> T:
        async with own:
            return await call()

    async def beside(call: Callable[[], Awaitable[T]]) -> T:
        pool = db.pool
        # Idle connections, or room for a new one. (A timeout on the pool's acquire would also bound giving the
        # connection back, and reset it then failed under load.)
        if pool is not None and pool.get_max_size() - pool.get_size() + pool.get_idle_size() <= 0:
            return await on_own(call)
        connection = await (pool.acquire() if pool is not None else db.get_new_connection())
        async with _SharedSnapshotTransaction(db, connection, snapshot):
            return await call()

    first, *others = calls
    tasks = [asyncio.ensure_future(on_own(first)), *(asyncio.ensure_future(beside(call)) for call in others)]
    # Every read ends before the page's transaction does, even when one fails.
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


# Ids per `IN (...)` when reading many rows by id: well under both engines' limit of parameters per statement
# (32,766 on SQLite, 32,767 on PostgreSQL).
IDS_PER_QUERY = 5000


def in_chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), IDS_PER_QUERY):
        yield ids[start : start + IDS_PER_QUERY]


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

    Only for requests that do not write, and both engines refuse a write in it: on SQLite the reads run on the
    event loop's thread (see _InlineReads); on PostgreSQL it is REPEATABLE READ (one snapshot; READ COMMITTED, the
    default, takes a new one per statement) and READ ONLY.
    """
    db = engine()
    if isinstance(db, PooledSQLiteEngine):
        return db.read_transaction()
    if isinstance(db, PostgresEngine):
        return _SnapshotReadTransaction(engine=db)
    return db.transaction()


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


# Parameters per INSERT statement of `insert_rows`: under both engines' limits (32,766 on SQLite, 32,767 on
# PostgreSQL).
PARAMETERS_PER_STATEMENT = 30_000


def _transaction_connection(caller: str) -> tuple[Any, bool]:
    """The driver connection of the current transaction, and whether it is PostgreSQL's (asyncpg: $n parameters,
    `fetch(sql, *args)`) rather than SQLite's (aiosqlite: ? parameters, `execute_fetchall(sql, args)`)."""
    db = engine()
    current = db.current_transaction.get()
    if current is None:
        raise RuntimeError(f"{caller} runs inside a transaction")
    return current.connection, isinstance(db, PostgresEngine)


async def insert_rows(table: Any, rows: list[dict[str, Any]], *, returning_id: bool = False) -> list[int]:
    """Many rows of one table in as few statements as the engine allows; their ids, in order, if
    asked. Call inside a transaction. Piccolo builds a Table instance and the SQL of every row (about half a
    millisecond each), and checks every parameter of a raw statement, which for an import of 100,000 customers
    with their audit and outbox rows is minutes; here the statement goes to the driver on the transaction's own
    connection. Every row has the first row's keys (column names); values go to the driver as they are (JSON as
    text, enums as their values)."""
    if not rows:
        return []
    connection, postgres = _transaction_connection("insert_rows")
    if postgres:
        return await _copy_rows(connection, table, rows, returning_id)
    columns = list(rows[0])
    # A chunk's rows share their moments (created_at, the audit's at): each is turned into SQLite's text once,
    # by the adapter Piccolo registered, instead of once per row.
    adapt = sqlite3.adapters.get((datetime, sqlite3.PrepareProtocol))
    moments = [
        position
        for position, column in enumerate(columns)
        if adapt is not None and isinstance(getattr(table, column, None), Timestamptz | Timestamp)
    ]
    adapted: dict[datetime, Any] = {}

    def moment(item: Any) -> Any:
        if type(item) is not datetime:
            return item
        if item not in adapted:
            adapted[item] = adapt(item)
        return adapted[item]

    # Table and column names come from the code (Piccolo tables, the caller's keys), never from a user.
    names = ", ".join(f'"{column}"' for column in columns)
    head = f'INSERT INTO "{table._meta.tablename}" ({names}) VALUES '  # noqa: S608
    ids: list[int] = []
    step = max(1, PARAMETERS_PER_STATEMENT // len(columns))
    for start in range(0, len(rows), step):
        part = rows[start : start + step]
        placeholders = ", ".join(["(" + ", ".join("?" * len(columns)) + ")"] * len(part))
        sql = head + placeholders + (' RETURNING "id"' if returning_id else "")
        parameters = [row[column] for row in part for column in columns]
        for position in moments:
            parameters[position :: len(columns)] = map(moment, parameters[position :: len(columns)])
        result = await connection.execute_fetchall(sql, parameters)
        if returning_id:
            ids.extend(row["id"] for row in result)
    return ids


async def _copy_rows(connection: Any, table: Any, rows: list[dict[str, Any]], returning_id: bool) -> list[int]:
    """PostgreSQL: the rows by COPY, and their ids taken from the table's sequence beforehand. A multi-row INSERT
    of 500 customers has some 18,000 parameters: PostgreSQL parses and plans it afresh every time (asyncpg
    caches no statement that long), which took about 0.23 s a chunk against under 0.1 s for this."""
    tablename = table._meta.tablename
    columns = list(rows[0])
    records = [tuple(row[column] for column in columns) for row in rows]
    ids: list[int] = []
    if returning_id:
        # nextval, as the column's default would call it: ids ascending in the rows' order, as an INSERT gives.
        taken = await connection.fetch(
            "SELECT nextval(pg_get_serial_sequence($1, 'id')) AS id FROM generate_series(1, $2)",
            f'"{tablename}"',
            len(rows),
        )
        ids = sorted(row["id"] for row in taken)
        columns = ["id", *columns]
        records = [(record_id, *record) for record_id, record in zip(ids, records, strict=True)]
    await connection.copy_records_to_table(tablename, records=records, columns=columns)
    return ids


async def select_in(
    table: Any,
    columns: list[str],
    column: str | tuple[str, str],
    values: list[Any],
    *,
    oldest: bool = False,
    given: bool = False,
) -> list[dict[str, Any]]:
    """The live (not soft-deleted) rows of one table whose `column` is one of `values`, with the given columns,
    in no particular order; with `oldest`, only the oldest row for each value, oldest first. A pair of columns
    is matched against pairs of values, with `oldest` only. With `given`, for a text column mostly empty (a
    contact's mobile), the query says the column is not empty, so that a partial index of the non-empty values
    serves it: SQLite's statistics of the whole column's index (tens of thousands of rows per value, all of them
    '') made it read the whole table instead, 17 ms for 500 mobiles against under 1 ms; asked for in id order,
    it read the table in that order even with the partial index. Call inside a transaction.

    The counterpart of insert_rows for reading: Piccolo builds and checks an SQL fragment for every value of an
    `is_in`, about 10 ms for 500 values, which for an import's duplicate check of 100,000 rows is most of a
    minute."""
    connection, postgres = _transaction_connection("select_in")
    # Table and column names come from the code, never from a user.
    names = ", ".join(f'"{name}"' for name in columns)
    matched = (column,) if isinstance(column, str) else column
    if len(matched) > 1 and not oldest:
        raise ValueError("a pair of columns is matched with oldest=True only")
    found: list[dict[str, Any]] = []
    for start in range(0, len(values), IDS_PER_QUERY):
        part = values[start : start + IDS_PER_QUERY]
        if oldest:
            found.extend(await _oldest_of_each(connection, postgres, table, names, matched, part))
            continue
        marks = ", ".join(f"${index}" for index in range(1, len(part) + 1)) if postgres else ", ".join("?" * len(part))
        matching = f'FROM "{table._meta.tablename}" WHERE "{column}" IN ({marks}) AND "deleted_at" IS NULL'
        if given:
            matching += f" AND \"{column}\" <> ''"
        sql = f"SELECT {names} {matching}"
        rows = await (connection.fetch(sql, *part) if postgres else connection.execute_fetchall(sql, part))
        found.extend(dict(row) for row in rows)
    return found


async def _oldest_of_each(
    connection: Any, postgres: bool, table: Any, names: str, matched: tuple[str, ...], values: list[Any]
) -> list[dict[str, Any]]:
    """The oldest live row for each value (or pair of values), oldest first, each found by probing an index for
    the value in id order until a live row. The GROUP BY of every matching row it replaces read every customer
    sharing a name key such as 公路局 or 交通运输局, for each chunk of an import: with 39,000 customers 30 ms
    against 2 ms on SQLite for 500 names (the planner of PostgreSQL scanned the whole table instead), so a large
    import into a full table grew with its square."""
    tablename = table._meta.tablename
    wanted = list(dict.fromkeys(values))
    if postgres:
        qualified = ", ".join(f'"{tablename}".{name}' for name in names.split(", "))
        if len(matched) == 1:
            kind = "bigint" if all(isinstance(value, int) for value in wanted) else "text"
            arrays, parameters = f"unnest($1::{kind}[])", [wanted]
        else:
            arrays = ", ".join(f"${index + 1}::text[]" for index in range(len(matched)))
            arrays, parameters = (
                f"unnest({arrays})",
                [[value[index] for value in wanted] for index in range(len(matched))],
            )
        alias = ", ".join(f'"v{index}"' for index in range(len(matched)))
        condition = " AND ".join(f'"{name}" = "wanted"."v{index}"' for index, name in enumerate(matched))
        sql = (
            f'SELECT {qualified} FROM {arrays} AS "wanted"({alias}) '  # noqa: S608
            f'CROSS JOIN LATERAL (SELECT "id" AS "first_id" FROM "{tablename}" WHERE {condition} '
            f'AND "deleted_at" IS NULL ORDER BY "id" LIMIT 1) AS "first" '
            f'JOIN "{tablename}" ON "{tablename}"."id" = "first"."first_id" ORDER BY "{tablename}"."id"'
        )
        return [dict(row) for row in await connection.fetch(sql, *parameters)]
    if len(matched) == 1:
        condition = f'"{matched[0]}" = "wanted"."value"'
    else:
        condition = " AND ".join(
            f'"{name}" = json_extract("wanted"."value", \'$[{index}]\')' for index, name in enumerate(matched)
        )
    sql = (
        f'SELECT {names} FROM "{tablename}" WHERE "id" IN (SELECT (SELECT "id" FROM "{tablename}" '  # noqa: S608
        f'WHERE {condition} AND "deleted_at" IS NULL ORDER BY "id" LIMIT 1) '
        f'FROM json_each(?) AS "wanted") ORDER BY "id"'
    )
    return [dict(row) for row in await connection.execute_fetchall(sql, [json.dumps(wanted, ensure_ascii=False)])]
