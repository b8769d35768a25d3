"""The worker's nightly jobs (value tiers, the duplicate scan): due after a nightly start in Beijing time or when
someone asked; run by one worker at a time; looked at every few seconds until the worker stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar

from piccolo.engine.postgres import PostgresEngine

from app.db import engine
from app.i18n import SHANGHAI

T = TypeVar("T")
CHECK_SECONDS = 5.0


def last_nightly(now: datetime, at: time) -> datetime:
    """The latest nightly start (at `at`, Beijing time) at or before `now`."""
    here = now.astimezone(SHANGHAI)
    start = datetime.combine(here.date(), at, tzinfo=SHANGHAI)
    if here < start:
        start -= timedelta(days=1)
    return start.astimezone(UTC)


async def run_if_due(
    is_due: Callable[[datetime], Awaitable[bool]], job: Callable[[], Awaitable[T]], *, lock_key: int
) -> T | None:
    """Run the job once if it is due. On PostgreSQL an advisory lock keeps several workers from running it at
    once; the one that waited finds it done when it looks again under the lock. On SQLite one worker runs."""
    if not await is_due(datetime.now(UTC)):
        return None
    db = engine()
    if not isinstance(db, PostgresEngine):
        return await job()
    connection: Any = await db.get_new_connection()
    try:
        if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", lock_key):
            return None
        try:
            if not await is_due(datetime.now(UTC)):
                return None
            return await job()
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", lock_key)
    finally:
        await connection.close()


async def run_forever(
    step: Callable[[], Awaitable[T | None]],
    describe: Callable[[T], str],
    *,
    log: logging.Logger,
    what: str,
    stop: asyncio.Event | None = None,
) -> None:
    """Call `step` every few seconds until stopped, logging what each run did; a failure is logged and tried again
    at the next look."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            result = await step()
            if result is not None:
                log.info("%s: %s", what, describe(result))
        except Exception:
            log.exception("%s failed; trying again later", what)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=CHECK_SECONDS)
