"""Value tiers (A/B/C by share of revenue) and RFM segments, kept on each customer so the list, search and the
analysis read them directly; recomputed by the worker every night and whenever a supervisor asks.

Revenue is the sum of a customer's projects that are neither deleted nor cancelled. Customers are ranked by
revenue (ties by id): A are the customers making the first `a_share` % of the total — the one that crosses the
line is still A — B the next `b_share` %, C the rest of those with revenue. Customers without revenue get no tier,
and a tier set by hand stays.

RFM: among the customers with revenue, recency (days since the last contact), frequency (counted projects) and
monetary value (revenue) are each high or low against the population's mean; the three give the eight segments.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time

from litestar.exceptions import PermissionDeniedException

from app.accounts.service import CurrentUser
from app.analysis.tables import AnalysisSettings
from app.core import schedule
from app.core import service as core
from app.core.tables import AuditLog, SearchOutbox
from app.customers.service import FormErrors
from app.customers.tables import Customer, Segment, Tier
from app.db import transaction
from app.i18n import _
from search.documents import jobs_for_change

log = logging.getLogger("kehu.analysis")

SETTINGS_ID = 1
CHUNK = 1000
# The nightly run starts after this hour, Asia/Shanghai: after the day's work, before the next.
NIGHTLY_AT = time(2, 0)
# PostgreSQL advisory lock key: one recomputation at a time, however many workers run.
_LOCK_KEY = 5_000_001

# Projects that count towards revenue and frequency.
COUNTED_PROJECTS = "deleted_at IS NULL AND status <> 'cancelled'"
REVENUE_SQL = (
    "SELECT customer, CAST(SUM(amount_fen) AS BIGINT) AS revenue, COUNT(*) AS projects "  # noqa: S608
    f"FROM project WHERE {COUNTED_PROJECTS} GROUP BY customer"
)

_SEGMENTS = {
    # (R high, F high, M high)
    (True, True, True): Segment.important_value,
    (True, False, True): Segment.important_develop,
    (False, True, True): Segment.important_keep,
    (False, False, True): Segment.important_retain,
    (True, True, False): Segment.general_value,
    (True, False, False): Segment.general_develop,
    (False, True, False): Segment.general_keep,
    (False, False, False): Segment.general_retain,
}


@dataclass(frozen=True)
class TierSettings:
    a_share: int = 80
    b_share: int = 15
    computed_at: datetime | None = None
    requested_at: datetime | None = None
    last_changed: int = 0

    @property
    def pending(self) -> bool:
        """A supervisor asked for a run the worker has not done yet."""
        return self.requested_at is not None and (self.computed_at is None or self.requested_at > self.computed_at)


@dataclass(frozen=True)
class RecomputeResult:
    a: int
    b: int
    c: int
    untiered: int
    pinned: int
    changed: int


async def tier_settings() -> TierSettings:
    row = await AnalysisSettings.select().where(AnalysisSettings.id == SETTINGS_ID).first()
    if row is None:
        return TierSettings()
    return TierSettings(
        a_share=row["a_share"],
        b_share=row["b_share"],
        computed_at=row["computed_at"],
        requested_at=row["requested_at"],
        last_changed=row["last_changed"],
    )


async def _ensure_settings_row() -> None:
    """The one settings row, made on first use; a fixed id lets two first uses at once agree on it."""
    defaults = TierSettings()
    await AnalysisSettings.raw(
        "INSERT INTO analysis_settings (id, a_share, b_share, last_changed) VALUES ({}, {}, {}, 0) "
        "ON CONFLICT (id) DO NOTHING",
        SETTINGS_ID,
        defaults.a_share,
        defaults.b_share,
    )


def require_supervisor(user: CurrentUser) -> None:
    if not user.is_supervisor:
        raise PermissionDeniedException(_("Only supervisors and admins may change the analysis."))


def _share(raw: str, low: int, high: int) -> int:
    text = (raw or "").strip().removesuffix("%").strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(raw)
    return int(text)


async def save_tier_settings(user: CurrentUser, data: dict[str, str]) -> None:
    """The A and B shares of revenue, in whole percent; saving them asks the worker for a new run."""
    require_supervisor(user)
    errors: dict[str, str] = {}
    a_share = b_share = 0
    try:
        a_share = _share(data.get("a_share", ""), 1, 99)
    except ValueError:
        errors["a_share"] = _("Enter a whole percentage from %(low)s to %(high)s.", low=1, high=99)
    try:
        b_share = _share(data.get("b_share", ""), 0, 99)
    except ValueError:
        errors["b_share"] = _("Enter a whole percentage from %(low)s to %(high)s.", low=0, high=99)
    if not errors and a_share + b_share > 100:
        errors["b_share"] = _("A and B together may make at most %(share)s%% of revenue.", share=100)
    if errors:
        raise FormErrors(errors)
    async with transaction():
        await _ensure_settings_row()
        before = await tier_settings()
        after = {"a_share": a_share, "b_share": b_share}
        changes = core.diff({"a_share": before.a_share, "b_share": before.b_share}, after)
        if not changes:
            return
        await AnalysisSettings.update({**after, "requested_at": datetime.now(UTC)}).where(
            AnalysisSettings.id == SETTINGS_ID
        )
        await core.record(
            actor_id=user.account_id,
            entity="analysis_settings",
            entity_id=SETTINGS_ID,
            action="update",
            changes=changes,
        )


async def request_recompute(user: CurrentUser) -> None:
    """Ask the worker to recompute the tiers now; it notices within a few seconds."""
    require_supervisor(user)
    now = datetime.now(UTC)
    async with transaction():
        await _ensure_settings_row()
        await AnalysisSettings.update({AnalysisSettings.requested_at: now}).where(AnalysisSettings.id == SETTINGS_ID)
        await core.record(
            actor_id=user.account_id,
            entity="analysis_settings",
            entity_id=SETTINGS_ID,
            action="recompute",
            changes={"requested_at": [None, now.isoformat()]},
        )


# ---------------------------------------------------------------------------------------------------------
# The computation


@dataclass
class Standing:
    """What the tiers and segments of one customer are computed from, and what it has now."""

    id: int
    revenue: int
    projects: int
    days_since_contact: int | None
    tier: str | None = None
    pinned: bool = False
    segment: str = ""


def rank_tiers(standings: list[Standing], a_share: int, b_share: int) -> dict[int, Tier]:
    """The computed tier of each customer with revenue (pinned tiers are applied by the caller)."""
    paying = sorted((s for s in standings if s.revenue > 0), key=lambda s: (-s.revenue, s.id))
    total = sum(s.revenue for s in paying)
    tiers: dict[int, Tier] = {}
    before = 0
    for standing in paying:
        # Integer arithmetic: "before < a_share % of total" without rounding.
        if before * 100 < a_share * total:
            tiers[standing.id] = Tier.a
        elif before * 100 < (a_share + b_share) * total:
            tiers[standing.id] = Tier.b
        else:
            tiers[standing.id] = Tier.c
        before += standing.revenue
    return tiers


def rfm_segments(standings: list[Standing]) -> dict[int, Segment]:
    """The RFM segment of each customer with revenue. A customer never contacted has low recency and is left
    out of the recency mean."""
    paying = [s for s in standings if s.revenue > 0]
    if not paying:
        return {}
    count = len(paying)
    contacted = [s.days_since_contact for s in paying if s.days_since_contact is not None]
    days_total, projects_total, revenue_total = (
        sum(contacted),
        sum(s.projects for s in paying),
        sum(s.revenue for s in paying),
    )
    segments = {}
    for s in paying:
        # Each side compared with the mean as integers: value × n against the sum.
        recent = s.days_since_contact is not None and s.days_since_contact * len(contacted) <= days_total
        frequent = s.projects * count >= projects_total
        valuable = s.revenue * count >= revenue_total
        segments[s.id] = _SEGMENTS[(recent, frequent, valuable)]
    return segments


async def _standings(now: datetime) -> list[Standing]:
    rows = await Customer.raw(
        "SELECT c.id, c.value_tier, c.tier_pinned, c.rfm_segment, c.last_contact_at, "  # noqa: S608
        "COALESCE(r.revenue, 0) AS revenue, COALESCE(r.projects, 0) AS projects "
        f"FROM customer c LEFT JOIN ({REVENUE_SQL}) r ON r.customer = c.id "
        "WHERE c.deleted_at IS NULL AND (r.revenue > 0 OR c.value_tier IS NOT NULL OR c.rfm_segment <> '')"
    )
    return [
        Standing(
            id=row["id"],
            revenue=int(row["revenue"]),
            projects=int(row["projects"]),
            days_since_contact=_days_since(row["last_contact_at"], now),
            tier=row["value_tier"],
            pinned=bool(row["tier_pinned"]),
            segment=row["rfm_segment"] or "",
        )
        for row in rows
    ]


def _days_since(moment: datetime | str | None, now: datetime) -> int | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0, (now - moment).days)


async def recompute_tiers(*, bulk_load: bool = False) -> RecomputeResult:
    """Compute every customer's tier and segment and write those that changed, a chunk per transaction, each
    tier change with its audit row (by the system) and each change with its search outbox row.

    `bulk_load` (the demo generator): no audit or outbox rows — the customers were just made, and the worker
    rebuilds the search index after a bulk load only when the outbox is empty."""
    now = datetime.now(UTC)
    settings = await tier_settings()
    standings = await _standings(now)
    tiers = rank_tiers(standings, settings.a_share, settings.b_share)
    segments = rfm_segments(standings)
    changes: list[tuple[Standing, str | None, str]] = []
    counts = {tier.value: 0 for tier in Tier}
    pinned = 0
    for standing in standings:
        tier = standing.tier if standing.pinned else (tiers[standing.id].value if standing.id in tiers else None)
        segment = segments[standing.id].value if standing.id in segments else ""
        pinned += standing.pinned
        if tier:
            counts[tier] += 1
        if tier != standing.tier or segment != standing.segment:
            changes.append((standing, tier, segment))
    changes.sort(key=lambda change: change[0].id)
    for start in range(0, len(changes), CHUNK):
        await _write(changes[start : start + CHUNK], record=not bulk_load)
    live = await Customer.count().where(Customer.deleted_at.is_null())
    await _ensure_settings_row()
    await AnalysisSettings.update(
        {AnalysisSettings.computed_at: now, AnalysisSettings.last_changed: len(changes)}
    ).where(AnalysisSettings.id == SETTINGS_ID)
    return RecomputeResult(
        a=counts[Tier.a.value],
        b=counts[Tier.b.value],
        c=counts[Tier.c.value],
        untiered=live - sum(counts.values()),
        pinned=pinned,
        changed=len(changes),
    )


async def _write(changes: list[tuple[Standing, str | None, str]], *, record: bool) -> None:
    async with transaction():
        # A tier pinned by hand since the computation read the customers stays as it was set.
        pinned = {
            row["id"]
            for row in await Customer.select(Customer.id).where(
                Customer.id.is_in([standing.id for standing, _tier, _segment in changes]), Customer.tier_pinned.eq(True)
            )
        }
        changes = [
            (standing, standing.tier if standing.id in pinned else tier, segment) for standing, tier, segment in changes
        ]
        changes = [change for change in changes if change[1] != change[0].tier or change[2] != change[0].segment]
        by_tier: dict[str | None, list[int]] = {}
        by_segment: dict[str, list[int]] = {}
        for standing, tier, segment in changes:
            if tier != standing.tier:
                by_tier.setdefault(tier, []).append(standing.id)
            if segment != standing.segment:
                by_segment.setdefault(segment, []).append(standing.id)
        for tier, ids in by_tier.items():
            await Customer.update({Customer.value_tier: tier}).where(Customer.id.is_in(ids))
        for segment, ids in by_segment.items():
            await Customer.update({Customer.rfm_segment: segment}).where(Customer.id.is_in(ids))
        if not record:
            return
        # Segments are audited too: a reindex replays what the audit log says changed while it ran.
        audits = [
            AuditLog(
                actor=None,
                entity="customer",
                entity_id=standing.id,
                customer_id=standing.id,
                action="update",
                diff={
                    **({"value_tier": [standing.tier, tier]} if tier != standing.tier else {}),
                    **({"rfm_segment": [standing.segment, segment]} if segment != standing.segment else {}),
                },
            )
            for standing, tier, segment in changes
        ]
        if audits:
            await AuditLog.insert(*audits)
        jobs = [
            job
            for standing, _tier, _segment in changes
            for job in jobs_for_change("customer", standing.id, standing.id)
        ]
        if jobs:
            await SearchOutbox.insert(*(SearchOutbox(entity=entity, entity_id=entity_id) for entity, entity_id in jobs))


# ---------------------------------------------------------------------------------------------------------
# The worker's schedule


def due(settings: TierSettings, now: datetime) -> bool:
    """A run is due when one was asked for, or the last one is older than the latest nightly start."""
    return (
        settings.pending
        or settings.computed_at is None
        or settings.computed_at < schedule.last_nightly(now, NIGHTLY_AT)
    )


async def recompute_if_due() -> RecomputeResult | None:
    """Run once if due; one worker at a time."""

    async def is_due(now: datetime) -> bool:
        return due(await tier_settings(), now)

    return await schedule.run_if_due(is_due, recompute_tiers, lock_key=_LOCK_KEY)


async def run_schedule(*, stop: asyncio.Event | None = None) -> None:
    """The worker's tier schedule: look every few seconds whether a run is due, until stopped."""
    await schedule.run_forever(
        recompute_if_due,
        lambda result: (
            f"A {result.a}, B {result.b}, C {result.c}, untiered {result.untiered}, pinned {result.pinned}, "
            f"changed {result.changed}"
        ),
        log=log,
        what="value tiers recomputed",
        stop=stop,
    )
