"""Keeping Meilisearch in step with the database: the outbox worker, the full reindex, and the status report.

Every write queues (entity, id) rows in `search_outbox` in its own transaction. The worker takes a batch,
rebuilds those documents from the database, sends them, waits until Meilisearch reports the task succeeded, and
only then deletes the rows. When Meilisearch is down the rows wait, with their attempts and last error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.core.tables import AuditLog, SearchOutbox
from app.customers.tables import Customer
from app.db import is_sqlite, transaction
from app.feedback.tables import Feedback
from app.followups.tables import FollowUp
from search import documents
from search import engine as meili
from search.documents import CUSTOMERS, FACET_VALUES, FEEDBACK, FOLLOW_UPS, INDEXES, Batch

log = logging.getLogger("kehu.search")

BATCH_SIZE = 500
# Outbox rows the worker takes at once. A change made in a page is one row and goes alone; a spreadsheet import
# queues thousands, and Meilisearch applies them faster in large batches: 20,000 imported customers were
# searchable after 9.8 s in batches of 500 and 6.6 s in batches of 5,000.
DRAIN_BATCH = 5_000
IDLE_SECONDS = 0.1
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
REINDEX_BATCH = 5_000
# A write whose transaction began before the rebuild read its rows may commit after: replay from a bit earlier.
REPLAY_MARGIN = timedelta(minutes=1)
REBUILD_SUFFIX = "_rebuild"
IN_FLIGHT = 4
# A rebuild batch takes seconds to apply: asking every 10 ms would take the CPU that builds the next batch.
REINDEX_POLL_MS = 200
_ENTITY_LOCK = {"customer": 1, "follow_up": 2, "feedback": 3}


def submit(batch: Batch, *, suffix: str = "") -> list[Any]:
    """Queue the replacements and deletions in Meilisearch; returns the tasks (synchronous)."""
    client = meili.client()
    tasks = []
    for name in INDEXES:
        index = client.index(meili.uid(name, suffix=suffix))
        if name != CUSTOMERS and batch.gone_customers:
            customers = ", ".join(str(customer_id) for customer_id in batch.gone_customers)
            tasks.append(index.delete_documents(filter=f"customer_id IN [{customers}]"))
        if batch.deletes[name]:
            ids = ", ".join(str(record_id) for record_id in batch.deletes[name])
            tasks.append(index.delete_documents(filter=f"id IN [{ids}]"))
        if batch.upserts[name]:
            tasks.append(index.add_documents(batch.upserts[name], primary_key="id"))
    return tasks


def send(batch: Batch, *, suffix: str = "") -> None:
    """Replace and delete documents, and wait until Meilisearch has applied every task (synchronous)."""
    for task in submit(batch, suffix=suffix):
        meili.wait(task)


async def push(jobs: Iterable[tuple[str, int]], *, suffix: str = "") -> int:
    """Bring these records' documents up to date with the database; returns how many documents changed."""
    batch = await documents.build(jobs)
    if len(batch):
        await meili.call(send, batch, suffix=suffix)
    return len(batch)


async def queue(jobs: list[tuple[str, int]]) -> None:
    """Put documents (back) in the outbox for the worker."""
    for start in range(0, len(jobs), BATCH_SIZE):
        async with transaction():
            await SearchOutbox.insert(
                *(
                    SearchOutbox(entity=entity, entity_id=record_id)
                    for entity, record_id in jobs[start : start + BATCH_SIZE]
                )
            )


async def _claim(limit: int) -> list[dict[str, Any]]:
    if is_sqlite():
        return (
            await SearchOutbox.select(SearchOutbox.id, SearchOutbox.entity, SearchOutbox.entity_id)
            .order_by(SearchOutbox.id)
            .limit(limit)
        )
    # Several workers may drain at once: each takes rows no other worker holds.
    return await SearchOutbox.raw(
        "SELECT id, entity, entity_id FROM search_outbox ORDER BY id LIMIT {} FOR UPDATE SKIP LOCKED", limit
    )


async def _lock_records(jobs: list[tuple[str, int]]) -> None:
    """PostgreSQL: two workers holding changes of the same record take turns, so the later state is sent last.
    Locks are taken in one order, so two workers never wait for each other: in one statement, as a round trip
    per record took 0.7 s for a batch of an import's 5,000 (PostgreSQL calls a volatile function of the select
    list after the ORDER BY, so in that order)."""
    ordered = sorted(set(jobs))
    if not ordered:
        return
    await SearchOutbox.raw(
        "SELECT pg_advisory_xact_lock(lock.class, lock.id) FROM unnest({}::int[], {}::int[]) "
        "WITH ORDINALITY AS lock(class, id, position) ORDER BY lock.position",
        [_ENTITY_LOCK.get(entity, 0) for entity, _ in ordered],
        [entity_id for _, entity_id in ordered],
    )


async def _note_failure(ids: list[int], error: Exception) -> None:
    message = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC {type(error).__name__}: {error}"[:1000]
    async with transaction():
        await SearchOutbox.update(
            {SearchOutbox.attempts: SearchOutbox.attempts + 1, SearchOutbox.last_error: message}
        ).where(SearchOutbox.id.is_in(ids))


async def drain_once(limit: int = DRAIN_BATCH) -> int:
    """Process one batch of the outbox; returns the number of outbox rows done (0 when it is empty).

    On failure the rows stay queued with their attempts and the error, and the error is raised.
    """
    failure: Exception | None = None
    if is_sqlite():
        # One worker on SQLite, and no transaction around the Meilisearch call: it would hold the write lock.
        rows = await _claim(limit)
        if not rows:
            # Idle polls stay reads: a write transaction here would take the lock ten times a second.
            return 0
        try:
            await push((row["entity"], row["entity_id"]) for row in rows)
        except Exception as error:
            failure = error
        else:
            async with transaction():
                await SearchOutbox.delete().where(SearchOutbox.id.is_in([row["id"] for row in rows] or [-1]))
    else:
        async with transaction():
            rows = await _claim(limit)
            try:
                await _lock_records([(row["entity"], row["entity_id"]) for row in rows])
                await push((row["entity"], row["entity_id"]) for row in rows)
            except Exception as error:
                failure = error
            else:
                await SearchOutbox.delete().where(SearchOutbox.id.is_in([row["id"] for row in rows] or [-1]))
    if failure is not None:
        await _note_failure([row["id"] for row in rows], failure)
        raise failure
    return len(rows)


async def drain(limit: int = DRAIN_BATCH) -> int:
    """Empty the outbox (what is queued now and while draining); returns the number of rows done."""
    done = 0
    while count := await drain_once(limit):
        done += count
    return done


async def run_worker(*, stop: asyncio.Event | None = None) -> None:
    """The `worker` process: create or update the indexes, rebuild them when they are missing, then drain the
    outbox for ever, backing off while Meilisearch is unreachable."""
    stop = stop or asyncio.Event()
    delay = BACKOFF_START
    prepared = False
    while not stop.is_set():
        try:
            if not prepared:
                await prepare_indexes()
                prepared = True
            done = await drain_once()
            delay = BACKOFF_START
            if done:
                continue
            await _sleep(stop, IDLE_SECONDS)
        except Exception as error:
            log.warning("search sync failed, retrying in %.1f s: %s", delay, error)
            await _sleep(stop, delay)
            delay = min(delay * 2, BACKOFF_MAX)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def prepare_indexes() -> None:
    """Start-up: apply the settings (idempotent). Rebuild the indexes from the database when they are missing,
    when nothing is queued and the counts still differ (data loaded in bulk, e.g. `kehu demo`), or when the
    customer documents were made by a release before their combined facet attribute (the list counts them
    correctly either way, but slowly)."""
    counts = await meili.call(meili.document_counts)
    earlier = counts[CUSTOMERS] is not None and FACET_VALUES not in await meili.call(
        meili.filterable_attributes, CUSTOMERS
    )
    await meili.call(meili.ensure_indexes)
    if counts[CUSTOMERS] is None or earlier or (not await SearchOutbox.exists() and counts != await _database_counts()):
        log.info("search indexes missing, of an earlier release or out of step: building them from the database")
        await reindex()


# ---------------------------------------------------------------------------------------------------------
# Full rebuild


async def _ids(table: Any, after: int, limit: int) -> list[int]:
    rows = await table.select(table.id).where(table.id > after).order_by(table.id).limit(limit)
    return [row["id"] for row in rows]


async def _changed_since(moment: datetime) -> list[tuple[str, int]]:
    rows = await AuditLog.select(AuditLog.entity, AuditLog.entity_id, AuditLog.customer_id).where(AuditLog.at >= moment)
    jobs: dict[tuple[str, int], None] = {}
    for row in rows:
        for job in documents.jobs_for_change(row["entity"], row["entity_id"], row["customer_id"]):
            jobs.setdefault(job)
    return list(jobs)


async def _database_counts() -> dict[str, int]:
    return {
        CUSTOMERS: await Customer.count().where(Customer.deleted_at.is_null()),
        FOLLOW_UPS: await FollowUp.count().where(FollowUp.deleted_at.is_null(), FollowUp.customer.deleted_at.is_null()),
        FEEDBACK: await Feedback.count().where(
            Feedback.deleted_at.is_null(),
            Feedback.customer.is_null() | Feedback.customer.deleted_at.is_null(),
        ),
    }


Progress = Callable[[int, int], None]


async def reindex(progress: Progress | None = None) -> dict[str, int]:
    """Rebuild every index from the database into fresh indexes and swap them in at once, so search never
    answers from a half-built index. Changes made meanwhile are replayed. Returns documents per index."""
    started = datetime.now(UTC) - REPLAY_MARGIN
    for name in INDEXES:
        await meili.call(meili.delete_index, meili.uid(name, suffix=REBUILD_SUFFIX))
    await meili.call(meili.ensure_indexes, suffix=REBUILD_SUFFIX)
    await meili.call(meili.ensure_indexes)
    total = sum((await _database_counts()).values())
    done = 0
    # Batches are queued without waiting for the previous one, so the database reads and document building
    # here overlap with indexing in Meilisearch; only a few batches are in flight at once.
    in_flight: list[tuple[list[Any], int]] = []

    async def settle(keep: int) -> None:
        nonlocal done
        while len(in_flight) > keep:
            tasks, size = in_flight.pop(0)
            for task in tasks:
                await meili.call(meili.wait, task, interval_ms=REINDEX_POLL_MS)
            done += size
            if progress:
                progress(min(done, total), total)

    for entity, table in (("customer", Customer), ("follow_up", FollowUp), ("feedback", Feedback)):
        after = 0
        while ids := await _ids(table, after, REINDEX_BATCH):
            after = ids[-1]
            # Follow-ups and feedback come in their own passes, not again with each customer.
            batch = await documents.build(((entity, record_id) for record_id in ids), with_children=False)
            batch.deletes, batch.gone_customers = {name: [] for name in INDEXES}, []
            in_flight.append((await meili.call(submit, batch, suffix=REBUILD_SUFFIX), len(batch)))
            await settle(IN_FLIGHT)
    await settle(0)
    replayed_at = datetime.now(UTC) - REPLAY_MARGIN
    await push(await _changed_since(started), suffix=REBUILD_SUFFIX)
    await meili.call(_swap)
    # Changes the worker sent to the old indexes while the rebuild ran go to the new ones, through the outbox:
    # sent from here, a state read now could overtake a newer one the worker is sending.
    await queue(await _changed_since(replayed_at))
    for name in INDEXES:
        await meili.call(meili.delete_index, meili.uid(name, suffix=REBUILD_SUFFIX))
    if progress:
        progress(total, total)
    return {name: count or 0 for name, count in (await meili.call(meili.document_counts)).items()}


def _swap() -> None:
    pairs = [{"indexes": [meili.uid(name), meili.uid(name, suffix=REBUILD_SUFFIX)]} for name in INDEXES]
    meili.wait(meili.client().swap_indexes(pairs))


# ---------------------------------------------------------------------------------------------------------
# Status


@dataclass
class Status:
    available: bool
    outbox_depth: int
    oldest_pending: datetime | None
    last_error: str
    database_counts: dict[str, int]
    index_counts: dict[str, int | None]
    error: str = ""

    @property
    def in_step(self) -> bool:
        return self.available and self.outbox_depth == 0 and self.database_counts == self.index_counts


async def status() -> Status:
    depth = await SearchOutbox.count()
    oldest = await SearchOutbox.select(SearchOutbox.created_at).order_by(SearchOutbox.id).first()
    failed = (
        await SearchOutbox.select(SearchOutbox.last_error)
        .where(SearchOutbox.last_error != "")
        .order_by(SearchOutbox.id, ascending=False)
        .first()
    )
    counts: dict[str, int | None] = {name: None for name in INDEXES}
    available, error = True, ""
    try:
        counts = await meili.call(meili.document_counts)
    except meili.Unavailable as problem:
        available, error = False, str(problem)
    return Status(
        available=available,
        outbox_depth=depth,
        oldest_pending=oldest["created_at"] if oldest else None,
        last_error=failed["last_error"] if failed else "",
        database_counts=await _database_counts(),
        index_counts=counts,
        error=error,
    )
