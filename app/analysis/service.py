"""Customer analysis for supervisors: every view is a few GROUP BY queries over the customers the filters pick,
turned into tables (each with its chart and, per row, the customer list behind it); plus the ad spend per channel
and month, and the value tier settings (computed in app.analysis.tiers).

Customers count when not deleted; revenue is the sum of a customer's projects that are neither deleted nor
cancelled; a customer is active when its last contact (follow-up or signed project) lies within KEHU_ACTIVE_DAYS.
The date range picks customers by the day they came in (a cohort); series per month or week count each event
(conversion, follow-up, chat, feedback) by its own date in the range, or in the last twelve months or weeks.
Months and weeks are Asia/Shanghai calendar months and weeks (Monday first).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any

from app.accounts.service import CurrentUser
from app.accounts.tables import Account
from app.analysis.report import AnalysisFilters, Chart, Column, Row, Table, View
from app.analysis.tables import AdSpend
from app.analysis.tiers import (
    RecomputeResult,
    TierSettings,
    recompute_tiers,
    request_recompute,
    require_supervisor,
    save_tier_settings,
    tier_settings,
)
from app.config import get_settings
from app.core import service as core
from app.customers.service import FormErrors, NotVisible, parse_amount
from app.customers.tables import Customer, Segment, Tier
from app.db import is_sqlite, read_transaction, side_by_side, transaction
from app.i18n import SHANGHAI, _, format_money
from app.labels import label, option_label
from app.options.service import valid_option_id
from app.options.tables import OptionItem, OptionKind
from app.regions import PROVINCES

__all__ = [
    "VIEWS",
    "FilterChoices",
    "RecomputeResult",
    "TierSettings",
    "ad_spend_entries",
    "build_view",
    "delete_ad_spend",
    "filter_choices",
    "recompute_tiers",
    "request_recompute",
    "save_ad_spend",
    "save_tier_settings",
    "tier_settings",
]

VIEWS: dict[str, Callable[[], str]] = {
    "overview": lambda: _("Overview"),
    "channels": lambda: _("Channels"),
    "prices": lambda: _("Price tolerance"),
    "regions": lambda: _("Regions"),
    "value": lambda: _("Customer value"),
    "activity": lambda: _("Activity"),
    "conversion": lambda: _("Conversion and staff"),
}

# How many rows the long lists keep: the rest is noise on a chart and in a table.
TOP_CAMPAIGNS = 30
SLIPPING_LIMIT = 50
OVERVIEW_PROVINCES = 10
# Usual interval between contacts: (last − first) / (contacts − 1), over at least this many contacts. The index
# of the customers the list considers (customer_live_valuable) has the number in its condition.
MIN_CONTACTS = 3
SERIES_MONTHS = 12
SERIES_WEEKS = 12


# ---------------------------------------------------------------------------------------------------------
# SQL pieces (both engines)


def _day_start(day: date) -> datetime:
    """The first moment of a day in Asia/Shanghai, in UTC (how times are stored)."""
    return datetime.combine(day, time(), tzinfo=SHANGHAI).astimezone(UTC)


def _month_of(column: str) -> tuple[str, str]:
    """The Asia/Shanghai month of a stored UTC moment (no daylight saving: a fixed +8 hours): what to group by,
    and its 'YYYY-MM' computed from that group key. PostgreSQL truncates a moment far faster than it formats one,
    so it formats once per group instead of once per row."""
    if is_sqlite():
        month = f"strftime('%Y-%m', {column}, '+8 hours')"
        return month, month
    first = f"date_trunc('month', {column}, 'Asia/Shanghai')"
    return first, f"to_char({first} AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')"


# Weeks are counted from Monday 2000-01-03, Asia/Shanghai: a number per week that both engines compute with
# arithmetic alone (SQLite's date modifiers cost more than the count itself over a quarter's follow-ups).
WEEK_ZERO = date(2000, 1, 3)


def _week_of(column: str) -> tuple[str, str]:
    """The Asia/Shanghai week (Monday first) of a stored moment: what to group by, and the week's number since
    WEEK_ZERO computed from that group key (on PostgreSQL, date_bin's whole-week bins cost less than float
    arithmetic on every row)."""
    if is_sqlite():
        week = f"CAST((julianday({column}) + 8 / 24.0 - 2451546.5) / 7 AS INTEGER)"
        return week, week
    origin = _day_start(WEEK_ZERO)
    monday = f"date_bin('7 days', {column}, TIMESTAMPTZ '{origin.isoformat()}')"
    return monday, f"((date_part('epoch', {monday}) - {origin.timestamp():.0f}) / 604800)::integer"


def _week_of_day(column: str) -> str:
    """The number since WEEK_ZERO of the week of an Asia/Shanghai day."""
    if is_sqlite():
        return f"CAST((julianday({column}) - julianday('{WEEK_ZERO.isoformat()}')) / 7 AS INTEGER)"
    return f"({column} - DATE '{WEEK_ZERO.isoformat()}') / 7"


def _week_monday(number: int) -> date:
    return WEEK_ZERO + timedelta(weeks=number)


def _seconds(column: str) -> str:
    """Seconds since 1970 of a stored moment or date, as a float (PostgreSQL's EXTRACT gives a slower numeric)."""
    if is_sqlite():
        return f"((julianday({column}) - 2440587.5) * 86400.0)"
    return f"date_part('epoch', {column})"


def _now_seconds() -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)" if is_sqlite() else "date_part('epoch', now())"


def _customers(index: str = "customer_live_analysis") -> str:
    """`customer c`; on SQLite read through an analysis index (see the migration), which holds every column the
    views group and filter by: SQLite otherwise picks an index for the GROUP BY order and reads each wide row."""
    return f"customer c INDEXED BY {index}" if is_sqlite() else "customer c"


def _follow_ups() -> str:
    """`follow_up f`; on SQLite through the index of live follow-ups by date, author and customer, which answers
    the counts alone (SQLite otherwise walks the author index and reads every row for deleted_at)."""
    return "follow_up f INDEXED BY follow_up_live_happened" if is_sqlite() else "follow_up f"


def _has_customer_filters(filters: AnalysisFilters) -> bool:
    return bool(filters.owner or filters.province or filters.channel or filters.origin)


def _customers_where(filters: AnalysisFilters, *, cohort: bool = True) -> tuple[str, list[Any]]:
    """The filters as a WHERE condition on `customer c`, with its arguments in order. Without `cohort` the date
    range is left out: time series pick events by their own date instead."""
    parts, args = ["c.deleted_at IS NULL"], []
    if cohort and filters.start:
        parts.append("c.created_at >= {}")
        args.append(_day_start(filters.start))
    if cohort and filters.end:
        parts.append("c.created_at < {}")
        args.append(_day_start(filters.end + timedelta(days=1)))
    if filters.owner == "pool":
        parts.append("c.owner IS NULL")
    elif filters.owner:
        parts.append("c.owner = {}")
        args.append(int(filters.owner))
    if filters.province:
        parts.append("c.province = {}")
        args.append(filters.province)
    if filters.channel:
        parts.append("c.source_channel = {}")
        args.append(filters.channel)
    if filters.origin:
        parts.append("c.origin = {}")
        args.append(filters.origin)
    return " AND ".join(parts), args


def _event_customers(filters: AnalysisFilters, column: str) -> tuple[str, str, list[Any]]:
    """The join and the condition for an event (chat, feedback) that may have no customer: without customer
    filters a visitor's event counts too, a deleted customer's never. Only customer filters join `customer c`;
    otherwise the few deleted customers are left out by the index of deleted ones, instead of joining every
    customer."""
    if _has_customer_filters(filters):
        where, args = _customers_where(filters, cohort=False)
        return f"JOIN customer c ON c.id = {column}", where, args
    deleted = "SELECT id FROM customer WHERE deleted_at IS NOT NULL"
    return "", f"({column} IS NULL OR {column} NOT IN ({deleted}))", []


async def _raw(sql: str, *args: Any) -> list[dict[str, Any]]:
    return await Customer.raw(sql, *args)


def _active_since() -> datetime:
    return datetime.now(UTC) - timedelta(days=get_settings().active_days)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# ---------------------------------------------------------------------------------------------------------
# Figures per group of customers


@dataclass
class _Group:
    customers: int = 0
    members: int = 0
    active: int = 0
    revenue: int = 0
    pinned: int = 0  # customers whose tier was set by hand

    @property
    def prospects(self) -> int:
        return self.customers - self.members

    @property
    def conversion(self) -> float | None:
        """The share of the group's customers who became members."""
        return _rate(self.members, self.customers)


async def _groups(
    filters: AnalysisFilters,
    keys: list[str],
    *,
    extra: str = "",
    extra_args: tuple[Any, ...] = (),
    index: str = "customer_live_analysis",
) -> dict[tuple[Any, ...], _Group]:
    """Customers, members, active customers and revenue per value of the key expressions (on `customer c`)."""
    prefetched = _PREFETCHED.get()
    if prefetched is not None and not extra and tuple(keys) in prefetched:
        return prefetched[tuple(keys)]
    where, args = _customers_where(filters)
    if extra:
        where, args = f"{where} AND {extra}", [*args, *extra_args]
    selected = "".join(f"{expression} AS k{index}, " for index, expression in enumerate(keys))
    grouped = f" GROUP BY {', '.join(keys)}" if keys else ""
    rows = await _raw(
        f"SELECT {selected}COUNT(*) AS customers, "  # noqa: S608 - only our own expressions are formatted in
        "SUM(CASE WHEN c.kind = 'member' THEN 1 ELSE 0 END) AS members, "
        "SUM(CASE WHEN c.last_contact_at >= {} THEN 1 ELSE 0 END) AS active, "
        "SUM(CASE WHEN c.tier_pinned THEN 1 ELSE 0 END) AS pinned, "
        "CAST(SUM(c.revenue_fen) AS BIGINT) AS revenue "
        f"FROM {_customers(index)} WHERE {where}{grouped}",
        _active_since(),
        *args,
    )
    groups: dict[tuple[Any, ...], _Group] = {}
    for row in rows:
        if row["customers"]:
            groups[tuple(row[f"k{index}"] for index in range(len(keys)))] = _Group(
                customers=int(row["customers"]),
                members=int(row["members"] or 0),
                active=int(row["active"] or 0),
                revenue=int(row["revenue"] or 0),
                pinned=int(row["pinned"] or 0),
            )
    return groups


# The groupings of customers each view asks `_groups` for (without an extra condition).
VIEW_GROUPINGS: dict[str, tuple[tuple[str, ...], ...]] = {
    "overview": ((), ("c.source_channel",), ("c.value_tier",), ("c.province",)),
    "channels": (("c.source_channel",),),
    "prices": (("c.budget_band",),),
    "regions": (("c.province",), ("c.province", "c.city")),
    "value": (("c.value_tier",), ("c.rfm_segment",)),
    "activity": (("c.value_tier",), ("c.owner",)),
}

# `_groups` answers from here what the view's one pass over the customers already counted.
_PREFETCHED: ContextVar[dict[tuple[str, ...], dict[tuple[Any, ...], _Group]] | None] = ContextVar(
    "analysis_prefetched", default=None
)


async def _prefetch(
    filters: AnalysisFilters, groupings: tuple[tuple[str, ...], ...]
) -> dict[tuple[str, ...], dict[tuple[Any, ...], _Group]] | None:
    """On PostgreSQL, every grouping a view needs from one pass over the customers: grouped by all the view's
    columns at once (at most about a thousand groups), then added up here per grouping. Feeding each row to one
    set of aggregates costs about as much as reading it, so this beats GROUPING SETS, which feeds every row to
    every set. SQLite reads its narrow analysis index fast enough to count each grouping on its own."""
    if is_sqlite():
        return None
    columns = list(dict.fromkeys(column for grouping in groupings for column in grouping))
    where, args = _customers_where(filters)
    selected = "".join(f"{column} AS k{index}, " for index, column in enumerate(columns))
    grouped = f" GROUP BY {', '.join(columns)}" if columns else ""
    rows = await _raw(
        f"SELECT {selected}COUNT(*) AS customers, "  # noqa: S608 - only our own expressions are formatted in
        "COUNT(*) FILTER (WHERE c.kind = 'member') AS members, "
        "COUNT(*) FILTER (WHERE c.last_contact_at >= {}) AS active, "
        "COUNT(*) FILTER (WHERE c.tier_pinned) AS pinned, "
        f"SUM(c.revenue_fen) AS revenue FROM customer c WHERE {where}{grouped}",
        _active_since(),
        *args,
    )
    prefetched: dict[tuple[str, ...], dict[tuple[Any, ...], _Group]] = {grouping: {} for grouping in groupings}
    for row in rows:
        if not row["customers"]:
            continue
        for grouping, groups in prefetched.items():
            group = groups.setdefault(tuple(row[f"k{columns.index(column)}"] for column in grouping), _Group())
            group.customers += int(row["customers"])
            group.members += int(row["members"])
            group.active += int(row["active"])
            group.pinned += int(row["pinned"])
            group.revenue += int(row["revenue"] or 0)
    return prefetched


async def _together(*calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    """A view's independent reads at the same time, all in the view's one snapshot (see db.side_by_side); a
    read on a connection of its own gets the view's planner settings first."""
    if is_sqlite():
        return await side_by_side(*calls)

    async def planned(call: Callable[[], Awaitable[Any]]) -> Any:
        await _plan_for_analysis()
        return await call()

    return await side_by_side(*(partial(planned, call) for call in calls))


async def _read_together(filters: AnalysisFilters, view: str, *calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    """The view's groups of customers (`_prefetch`, which `_groups` answers from for the rest of the view) and
    the results of its other heavy reads, all read at once."""
    prefetched, *results = await _together(partial(_prefetch, filters, VIEW_GROUPINGS[view]), *calls)
    _PREFETCHED.set(prefetched)
    return results


@dataclass
class _Context:
    """Names the views look up: option entries and accounts, each read once per view."""

    options: dict[int, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[int, str] = field(default_factory=dict)

    @classmethod
    async def load(cls) -> _Context:
        options = await OptionItem.select().order_by(OptionItem.position).order_by(OptionItem.id)
        accounts = await Account.select(Account.id, Account.name)
        return cls(
            options={row["id"]: row for row in options},
            accounts={row["id"]: row["name"] for row in accounts},
        )

    def option(self, option_id: int | None) -> str:
        return option_label(self.options.get(option_id)) if option_id else ""

    def position(self, option_id: int | None) -> tuple[int, int]:
        """Option list order, with "none" last."""
        row = self.options.get(option_id) if option_id else None
        return (0, row["position"]) if row else (1, 0)


def _count_columns(*, revenue: bool = True) -> list[Column]:
    columns = [
        Column("customers", _("Customers"), "count"),
        Column("prospects", _("Prospects"), "count"),
        Column("members", _("Members"), "count"),
        Column("conversion", _("Conversion rate"), "percent"),
    ]
    if revenue:
        columns.append(Column("revenue", _("Revenue"), "money"))
    return columns


def _count_cells(group: _Group) -> dict[str, Any]:
    return {
        "customers": group.customers,
        "prospects": group.prospects,
        "members": group.members,
        "conversion": group.conversion,
        "revenue": group.revenue,
    }


# ---------------------------------------------------------------------------------------------------------
# Channels


def _month_first(day: date) -> date:
    return day.replace(day=1)


async def _spend_by_channel(filters: AnalysisFilters) -> dict[int, int]:
    """Ad spend per channel over the months the date range touches (all months without a range)."""
    query = AdSpend.select(AdSpend.channel, AdSpend.amount_fen)
    if filters.start:
        query = query.where(AdSpend.month >= _month_first(filters.start))
    if filters.end:
        query = query.where(AdSpend.month <= filters.end)
    if filters.channel:
        query = query.where(AdSpend.channel == filters.channel)
    spend: dict[int, int] = {}
    for row in await query:
        spend[row["channel"]] = spend.get(row["channel"], 0) + row["amount_fen"]
    return spend


def _per(amount: int | None, count: int) -> int | None:
    return round(amount / count) if amount is not None and count else None


async def _channels_table(filters: AnalysisFilters, context: _Context) -> Table:
    groups = await _groups(filters, ["c.source_channel"])
    spend = await _spend_by_channel(filters)
    keys = set(groups) | {(channel_id,) for channel_id in spend}
    rows = []
    for key in sorted(keys, key=lambda key: context.position(key[0])):
        channel_id = key[0]
        group = groups.get(key, _Group())
        cost = spend.get(channel_id) if channel_id else None
        rows.append(
            Row(
                {
                    "channel": context.option(channel_id) or _("No channel"),
                    **_count_cells(group),
                    "spend": cost,
                    "per_customer": _per(cost, group.customers),
                    "per_member": _per(cost, group.members),
                },
                filters.customers_link(channel=channel_id) if channel_id else None,
            )
        )
    return Table(
        key="channels",
        title=_("Customers by source channel"),
        columns=[
            Column("channel", _("Source channel")),
            *_count_columns(),
            Column("spend", _("Ad spend"), "money"),
            Column("per_customer", _("Cost per customer"), "money"),
            Column("per_member", _("Cost per member"), "money"),
        ],
        rows=rows,
        chart=Chart("bar", "channel", ("customers", "members")),
        note=_(
            "Conversion rate: members among the channel's customers. Ad spend covers the months of the date range "
            "(all months without one), whatever the owner, province or origin filter. Every customer came in as a "
            "prospect, so the cost per customer is the cost of winning a prospect."
        ),
    )


async def _campaigns_table(filters: AnalysisFilters) -> Table:
    groups = await _groups(
        filters,
        ["c.utm_source", "c.utm_campaign"],
        # Exactly the condition of the campaign index, which SQLite uses only when the query implies it.
        extra="(c.utm_source <> '' OR c.utm_campaign <> '')",
        index="customer_live_campaign",
    )
    ranked = sorted(groups.items(), key=lambda item: (-item[1].customers, item[0]))[:TOP_CAMPAIGNS]
    return Table(
        key="campaigns",
        title=_("Customers by first-touch campaign"),
        columns=[
            Column("utm_source", _("Campaign source")),
            Column("utm_campaign", _("Campaign")),
            *_count_columns(),
        ],
        rows=[
            Row(
                {"utm_source": source, "utm_campaign": campaign, **_count_cells(group)},
                filters.customers_link(utm_source=source, utm_campaign=campaign),
            )
            for (source, campaign), group in ranked
        ],
        chart=Chart("bar", "utm_campaign", ("customers", "members")),
        note=_(
            "The campaign that first brought each customer (utm_source / utm_campaign); the %(n)s largest.",
            n=TOP_CAMPAIGNS,
        ),
    )


async def _channels_view(filters: AnalysisFilters, context: _Context) -> View:
    (campaigns,) = await _read_together(filters, "channels", partial(_campaigns_table, filters))
    return View("channels", VIEWS["channels"](), [await _channels_table(filters, context), campaigns])


# ---------------------------------------------------------------------------------------------------------
# Price tolerance


def _distribution(amounts: list[int]) -> dict[str, Any]:
    ordered = sorted(amounts)
    if len(ordered) == 1:
        q1 = median = q3 = float(ordered[0])
    else:
        q1, median, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return {
        "projects": len(ordered),
        "min": ordered[0],
        "q1": round(q1),
        "median": round(median),
        "q3": round(q3),
        "max": ordered[-1],
        "mean": round(sum(ordered) / len(ordered)),
    }


_COUNTED_AMOUNTS = (
    "FROM {customers} JOIN project p ON p.customer = c.id "
    "WHERE p.deleted_at IS NULL AND p.status <> 'cancelled' AND {where}"
)


async def _amount_distributions(
    filters: AnalysisFilters,
) -> tuple[dict[int | None, dict[str, Any]], dict[int | None, dict[str, Any]]]:
    """Project amounts per budget band and per industry. PostgreSQL computes the quartiles itself
    (percentile_cont is the inclusive method); SQLite has no percentiles, so its amounts come back once, for both."""
    where, args = _customers_where(filters)
    counted = _COUNTED_AMOUNTS.format(customers=_customers(), where=where)
    if is_sqlite():
        by_budget: dict[int | None, list[int]] = {}
        by_industry: dict[int | None, list[int]] = {}
        for row in await _raw(
            f"SELECT c.budget_band AS budget, c.industry AS industry, p.amount_fen AS amount {counted}", *args
        ):
            by_budget.setdefault(row["budget"], []).append(int(row["amount"]))
            by_industry.setdefault(row["industry"], []).append(int(row["amount"]))
        return (
            {key: _distribution(values) for key, values in by_budget.items()},
            {key: _distribution(values) for key, values in by_industry.items()},
        )
    # Both groupings in one pass; GROUPING() is 1 on a budget band's row (industry not grouped), 2 on an industry's.
    rows = await _raw(
        "SELECT c.budget_band AS budget, c.industry AS industry, GROUPING(c.budget_band, c.industry) AS grouped, "
        "COUNT(*) AS projects, MIN(p.amount_fen) AS min, MAX(p.amount_fen) AS max, AVG(p.amount_fen) AS mean, "
        f"percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY p.amount_fen) AS q {counted} "
        "GROUP BY GROUPING SETS ((c.budget_band), (c.industry))",
        *args,
    )
    found: tuple[dict[int | None, dict[str, Any]], dict[int | None, dict[str, Any]]] = ({}, {})
    for row in rows:
        by_budget = row["grouped"] == 1
        found[0 if by_budget else 1][row["budget"] if by_budget else row["industry"]] = {
            "projects": int(row["projects"]),
            "min": int(row["min"]),
            "q1": round(row["q"][0]),
            "median": round(row["q"][1]),
            "q3": round(row["q"][2]),
            "max": int(row["max"]),
            "mean": round(row["mean"]),
        }
    return found


def _distribution_columns(first: Column) -> list[Column]:
    return [
        first,
        Column("projects", _("Projects"), "count"),
        Column("min", _("Minimum"), "money"),
        Column("q1", _("Lower quartile"), "money"),
        Column("median", _("Median"), "money"),
        Column("q3", _("Upper quartile"), "money"),
        Column("max", _("Maximum"), "money"),
        Column("mean", _("Mean"), "money"),
    ]


async def _prices_view(filters: AnalysisFilters, context: _Context) -> View:
    ((by_budget, by_industry),) = await _read_together(filters, "prices", partial(_amount_distributions, filters))
    groups = await _groups(filters, ["c.budget_band"])
    total = sum(group.customers for group in groups.values())
    bands = sorted(groups, key=lambda key: context.position(key[0]))

    def band_name(band_id: int | None) -> str:
        return context.option(band_id) or _("No budget band")

    distribution = Table(
        key="budgets",
        title=_("Customers by budget band"),
        columns=[
            Column("budget", _("Budget band")),
            Column("customers", _("Customers"), "count"),
            Column("share", _("Share of customers"), "percent"),
        ],
        rows=[
            Row(
                {
                    "budget": band_name(key[0]),
                    "customers": groups[key].customers,
                    "share": _rate(groups[key].customers, total),
                },
                filters.customers_link(budget=key[0]) if key[0] else None,
            )
            for key in bands
        ],
        chart=Chart("doughnut", "budget", ("customers",)),
    )
    conversion = Table(
        key="budget_conversion",
        title=_("Conversion by budget band"),
        columns=[Column("budget", _("Budget band")), *_count_columns()],
        rows=[
            Row(
                {"budget": band_name(key[0]), **_count_cells(groups[key])},
                filters.customers_link(kind="member", budget=key[0]) if key[0] else None,
            )
            for key in bands
        ],
        chart=Chart("bar", "budget", ("conversion",)),
        note=_("Conversion rate: members among the band's customers."),
    )
    quartiles = _(
        "Counted projects (neither deleted nor cancelled). Quartiles by the inclusive method (linear "
        "interpolation between the amounts, as a spreadsheet's QUARTILE)."
    )
    amounts_by_budget = Table(
        key="amounts_by_budget",
        title=_("Project amounts by budget band"),
        columns=_distribution_columns(Column("budget", _("Budget band"))),
        rows=[
            Row(
                {"budget": band_name(band_id), **by_budget[band_id]},
                filters.customers_link(kind="member", budget=band_id) if band_id else None,
            )
            for band_id in sorted(by_budget, key=context.position)
        ],
        chart=Chart("bar", "budget", ("q1", "median", "q3")),
        note=quartiles,
    )
    amounts_by_industry = Table(
        key="amounts_by_industry",
        title=_("Project amounts by industry"),
        columns=_distribution_columns(Column("industry", _("Industry"))),
        rows=[
            Row(
                {
                    "industry": context.option(industry_id) or _("No industry"),
                    **by_industry[industry_id],
                },
                filters.customers_link(kind="member", industry=industry_id) if industry_id else None,
            )
            for industry_id in sorted(by_industry, key=context.position)
        ],
        chart=Chart("bar", "industry", ("q1", "median", "q3")),
        note=quartiles,
    )
    return View("prices", VIEWS["prices"](), [distribution, conversion, amounts_by_budget, amounts_by_industry])


# ---------------------------------------------------------------------------------------------------------
# Regions


def _province_order(province: str) -> int:
    provinces = list(PROVINCES)
    return provinces.index(province) if province in PROVINCES else len(provinces)


async def _provinces_table(filters: AnalysisFilters, limit: int | None = None) -> Table:
    groups = await _groups(filters, ["c.province"])
    ranked = sorted(groups.items(), key=lambda item: (-item[1].customers, _province_order(item[0][0])))
    return Table(
        key="provinces",
        title=_("Customers by province"),
        columns=[Column("province", _("Province")), *_count_columns()],
        rows=[
            Row(
                {"province": province or _("Unknown"), **_count_cells(group)},
                filters.customers_link(province=province) if province else None,
            )
            for (province,), group in ranked[:limit]
        ],
        chart=Chart("bar", "province", ("customers", "members")),
    )


async def _regions_view(filters: AnalysisFilters) -> View:
    await _read_together(filters, "regions")
    cities = await _groups(filters, ["c.province", "c.city"])
    ranked = sorted(cities.items(), key=lambda item: (-item[1].customers, item[0]))
    cities_table = Table(
        key="cities",
        title=_("Customers by city"),
        columns=[Column("province", _("Province")), Column("city", _("City")), *_count_columns()],
        rows=[
            Row(
                {"province": province or _("Unknown"), "city": city or _("Unknown"), **_count_cells(group)},
                filters.customers_link(province=province, city=city) if province and city else None,
            )
            for (province, city), group in ranked
        ],
        chart=Chart("bar", "city", ("customers", "members")),
    )
    return View("regions", VIEWS["regions"](), [await _provinces_table(filters), cities_table])


# ---------------------------------------------------------------------------------------------------------
# Value


# The Pareto curve's points: the top 0 %, 5 %, … 100 % of the customers with revenue.
PARETO_STEP = 5


@dataclass(frozen=True)
class _Pareto:
    count: int  # customers with revenue
    total: int  # their revenue
    running: dict[int, int]  # the top N customers' revenue, for the N of each point
    for_80: int  # how many of the top customers it takes to make 80 % of the revenue

    def fact(self) -> str | None:
        if not self.total:
            return None
        share = self.for_80 / self.count
        return _("%(share)s of the customers with revenue bring 80%% of it.", share=f"{share:.1%}")


def _pareto_ranks(count: int) -> list[int]:
    # The top `percent` % of customers, rounded up: the first point after 0 has at least one customer.
    return [-(-percent * count // 100) for percent in range(0, 101, PARETO_STEP)]


async def _pareto(filters: AnalysisFilters) -> _Pareto:
    """Customers ranked by revenue (ties by id); the database sums the running revenue in one pass, so only the
    curve's points and the customer who crosses 80 % come back, not a row per customer.

    The point for p % is the customer ranked ceil(p·n/100), so a rank r is a point when some multiple of 5 lies in
    (100(r−1)/n, 100r/n]: when ⌊20r/n⌋ > ⌊20(r−1)/n⌋ in whole numbers."""
    where, args = _customers_where(filters)
    # The count and the total come first, on their own: as windows over the whole ranking (OVER ()) they make
    # the database hold every ranked row before the first one can be filtered. Place and running sum share one
    # window, so one pass in revenue order computes both (on PostgreSQL straight from customer_live_revenue).
    rows = await _raw(
        f"WITH totals AS (SELECT COUNT(*) AS n, SUM(c.revenue_fen) AS total FROM {_customers()} "  # noqa: S608
        f"WHERE {where} AND c.revenue_fen > 0) "
        "SELECT place, n, total, running FROM (SELECT c.revenue_fen AS revenue, ROW_NUMBER() OVER ranking AS place, "
        f"SUM(c.revenue_fen) OVER ranking AS running FROM {_customers()} WHERE {where} AND c.revenue_fen > 0 "
        "WINDOW ranking AS (ORDER BY c.revenue_fen DESC, c.id ROWS UNBOUNDED PRECEDING)) ranked, totals "
        "WHERE (20 * place) / n > (20 * (place - 1)) / n "
        "OR (running * 100 >= total * 80 AND (running - revenue) * 100 < total * 80)",
        *args,
        *args,
    )
    if not rows:
        return _Pareto(0, 0, {0: 0}, 0)
    count, total = int(rows[0]["n"]), int(rows[0]["total"])
    running = {0: 0} | {int(row["place"]): int(row["running"]) for row in rows}
    crossing = min(place for place, amount in running.items() if amount * 100 >= 80 * total)
    return _Pareto(count, total, running, crossing)


def _pareto_table(pareto: _Pareto) -> Table:
    rows = [
        Row(
            {
                "customer_share": index * PARETO_STEP / 100,
                "customers": rank,
                "revenue": pareto.running[rank],
                "revenue_share": _rate(pareto.running[rank], pareto.total),
            }
        )
        for index, rank in enumerate(_pareto_ranks(pareto.count))
    ]
    count = pareto.count
    return Table(
        key="pareto",
        title=_("Share of revenue by share of customers"),
        columns=[
            Column("customer_share", _("Share of customers"), "percent"),
            Column("customers", _("Customers"), "count"),
            Column("revenue", _("Revenue"), "money"),
            Column("revenue_share", _("Share of revenue"), "percent"),
        ],
        rows=rows if count else [],
        chart=Chart("pareto", "customer_share", ("revenue_share",)),
        note=_("Customers with revenue, largest first: how much of the revenue the top share of them brings."),
    )


async def _tiers_table(filters: AnalysisFilters) -> Table:
    groups = await _groups(filters, ["c.value_tier"])
    total = sum(group.revenue for group in groups.values())
    rows = []
    for tier in [*(tier.value for tier in Tier), None]:
        group = groups.get((tier,), _Group())
        rows.append(
            Row(
                {
                    "tier": label(tier) if tier else _("No tier"),
                    "customers": group.customers,
                    "revenue": group.revenue,
                    "revenue_share": _rate(group.revenue, total),
                    "pinned": group.pinned,
                },
                filters.customers_link(kind="member", tier=tier) if tier else None,
            )
        )
    return Table(
        key="tiers",
        title=_("Value tiers"),
        columns=[
            Column("tier", _("Value tier")),
            Column("customers", _("Customers"), "count"),
            Column("revenue", _("Revenue"), "money"),
            Column("revenue_share", _("Share of revenue"), "percent"),
            Column("pinned", _("Set by hand"), "count"),
        ],
        rows=rows,
        chart=Chart("doughnut", "tier", ("revenue",)),
        note=_(
            "A: the customers making the first share of revenue, B: the next, C: the rest with revenue "
            "(as of the last recomputation). A tier set by hand stays."
        ),
    )


async def _segments_table(filters: AnalysisFilters) -> Table:
    # Customers without a project yet have no segment (""). PostgreSQL counted every segment in the view's one
    # pass already; SQLite counts the others alone.
    extra = "c.rfm_segment <> ''" if is_sqlite() else ""
    groups = {key: group for key, group in (await _groups(filters, ["c.rfm_segment"], extra=extra)).items() if key[0]}
    total = sum(group.customers for group in groups.values())
    return Table(
        key="segments",
        title=_("RFM segments"),
        columns=[
            Column("segment", _("Segment")),
            Column("customers", _("Customers"), "count"),
            Column("share", _("Share of customers"), "percent"),
            Column("revenue", _("Revenue"), "money"),
        ],
        rows=[
            Row(
                {
                    "segment": label(segment),
                    "customers": groups.get((segment.value,), _Group()).customers,
                    "share": _rate(groups.get((segment.value,), _Group()).customers, total),
                    "revenue": groups.get((segment.value,), _Group()).revenue,
                },
                filters.customers_link(kind="member", segment=segment.value),
            )
            for segment in Segment
        ],
        chart=Chart("bar", "segment", ("customers",)),
        note=_(
            "Among the customers with revenue: recency (days since the last contact), frequency (projects) and "
            "monetary value (revenue), each high or low against the average."
        ),
    )


async def _value_view(filters: AnalysisFilters) -> View:
    (pareto,) = await _read_together(filters, "value", partial(_pareto, filters))
    fact = pareto.fact()
    return View(
        "value",
        VIEWS["value"](),
        [_pareto_table(pareto), await _tiers_table(filters), await _segments_table(filters)],
        facts=[fact] if fact else [],
    )


# ---------------------------------------------------------------------------------------------------------
# Activity


def _activity_columns(first: Column) -> list[Column]:
    return [
        first,
        Column("customers", _("Customers"), "count"),
        Column("active", _("Active"), "count"),
        Column("inactive", _("Inactive"), "count"),
        Column("active_share", _("Active share"), "percent"),
    ]


def _activity_cells(group: _Group) -> dict[str, Any]:
    return {
        "customers": group.customers,
        "active": group.active,
        "inactive": group.customers - group.active,
        "active_share": _rate(group.active, group.customers),
    }


async def _slipping_table(filters: AnalysisFilters, context: _Context) -> Table:
    """The first and last contact and their number are kept on the customer row by every follow-up and project
    write (refresh_contact_dates), so the list reads the valuable customers alone, not their follow-ups, most
    revenue first from their index until it has its length."""
    where, args = _customers_where(filters)
    since = f"{_now_seconds()} - {_seconds('c.last_contact_at')}"
    usual = f"({_seconds('c.last_contact_at')} - {_seconds('c.first_contact_at')}) / (c.contact_count - 1)"
    rows = await _raw(
        f"SELECT c.id, c.name, c.value_tier, c.owner, c.contact_count AS n, {since} AS since_s, "  # noqa: S608
        f"{usual} AS usual_s, c.revenue_fen AS revenue FROM {_customers('customer_live_valuable')} "
        f"WHERE {where} AND c.value_tier IN ('A', 'B') AND c.contact_count >= {MIN_CONTACTS} AND {since} > {usual} "
        f"ORDER BY c.revenue_fen DESC, c.id LIMIT {SLIPPING_LIMIT}",
        *args,
    )
    day = 86400.0
    return Table(
        key="slipping",
        title=_("Valuable customers slipping away"),
        columns=[
            Column("name", _("Customer")),
            Column("tier", _("Value tier")),
            Column("owner", _("Owner")),
            Column("revenue", _("Revenue"), "money"),
            Column("contacts", _("Contacts"), "count"),
            Column("usual", _("Usual interval"), "days"),
            Column("since", _("Days since last contact"), "days"),
        ],
        rows=[
            Row(
                {
                    "name": row["name"],
                    "tier": label(row["value_tier"]),
                    "owner": context.accounts.get(row["owner"], "") if row["owner"] else _("Public pool"),
                    "revenue": int(row["revenue"]),
                    "contacts": int(row["n"]),
                    "usual": round(float(row["usual_s"]) / day),
                    "since": int(float(row["since_s"]) // day),
                },
                f"/customers/{row['id']}",
            )
            for row in rows
        ],
        note=_(
            "Tier A and B customers whose last contact is longer ago than their usual interval between contacts: "
            "(last − first contact) ÷ (contacts − 1), over follow-ups and signed projects, with at least "
            "%(n)s contacts. Most valuable first.",
            n=MIN_CONTACTS,
        ),
    )


async def _activity_view(filters: AnalysisFilters, context: _Context) -> View:
    (slipping,) = await _read_together(filters, "activity", partial(_slipping_table, filters, context))
    days = get_settings().active_days
    by_tier = await _groups(filters, ["c.value_tier"])
    by_owner = await _groups(filters, ["c.owner"])
    tiers = Table(
        key="activity_by_tier",
        title=_("Active and inactive customers by value tier"),
        columns=_activity_columns(Column("tier", _("Value tier"))),
        rows=[
            Row(
                {"tier": label(tier) if tier else _("No tier"), **_activity_cells(by_tier.get((tier,), _Group()))},
                filters.customers_link(kind="member", tier=tier) if tier else None,
            )
            for tier in [*(tier.value for tier in Tier), None]
        ],
        chart=Chart("stacked_bar", "tier", ("active", "inactive")),
        note=_("Active: a follow-up or a signed project within the last %(days)s days.", days=days),
    )
    # Ties by name: the order of the database's groups is no order at all.
    owners = sorted(
        by_owner.items(),
        key=lambda item: (item[0][0] is None, -item[1].customers, context.accounts.get(item[0][0], "")),
    )
    owners_table = Table(
        key="activity_by_owner",
        title=_("Active and inactive customers by owner"),
        columns=_activity_columns(Column("owner", _("Owner"))),
        rows=[
            Row(
                {
                    "owner": context.accounts.get(owner_id, "") if owner_id else _("Public pool"),
                    **_activity_cells(group),
                },
                filters.customers_link(owner=owner_id or "pool"),
            )
            for (owner_id,), group in owners
        ],
        chart=Chart("stacked_bar", "owner", ("active", "inactive")),
    )
    return View("activity", VIEWS["activity"](), [tiers, owners_table, slipping])


# ---------------------------------------------------------------------------------------------------------
# Conversion and staff


def _period(filters: AnalysisFilters, *, weeks: bool = False) -> tuple[date, date]:
    """The days a time series covers: the date range, or the last twelve months (weeks) up to today."""
    today = datetime.now(SHANGHAI).date()
    end = filters.end or today
    if filters.start:
        return filters.start, end
    if weeks:
        return end - timedelta(days=end.weekday() + 7 * (SERIES_WEEKS - 1)), end
    first = _month_first(end)
    for _step in range(SERIES_MONTHS - 1):
        first = _month_first(first - timedelta(days=1))
    return first, end


def _months(start: date, end: date) -> list[date]:
    months, month = [], _month_first(start)
    while month <= end:
        months.append(month)
        month = _month_first(month + timedelta(days=32))
    return months


def _month_last(month: date) -> date:
    return _month_first(month + timedelta(days=32)) - timedelta(days=1)


# Per month the customers came in and their source channel: how many, and how many are members now.
Cohorts = dict[tuple[str, int | None], tuple[int, int]]


async def _cohorts(filters: AnalysisFilters) -> Cohorts:
    start, end = _period(filters)
    where, args = _customers_where(filters, cohort=False)
    grouped, month = _month_of("c.created_at")
    rows = await _raw(
        f"SELECT {month} AS month, c.source_channel AS channel, COUNT(*) AS customers, "  # noqa: S608
        "SUM(CASE WHEN c.kind = 'member' THEN 1 ELSE 0 END) AS members "
        f"FROM {_customers()} WHERE {where} AND c.created_at >= {{}} AND c.created_at < {{}} "
        f"GROUP BY {grouped}, c.source_channel",
        *args,
        _day_start(start),
        _day_start(end + timedelta(days=1)),
    )
    return {(row["month"], row["channel"]): (int(row["customers"]), int(row["members"] or 0)) for row in rows}


async def _conversions(filters: AnalysisFilters) -> dict[str, int]:
    """Per month ('YYYY-MM') of the period, how many of the filters' customers became members in it."""
    start, end = _period(filters)
    where, args = _customers_where(filters, cohort=False)
    grouped, month = _month_of("c.converted_at")
    return {
        row["month"]: int(row["conversions"])
        for row in await _raw(
            f"SELECT {month} AS month, COUNT(*) AS conversions "  # noqa: S608
            f"FROM {_customers()} WHERE {where} AND c.converted_at >= {{}} AND c.converted_at < {{}} "
            f"GROUP BY {grouped}",
            *args,
            _day_start(start),
            _day_start(end + timedelta(days=1)),
        )
    }


def _months_table(filters: AnalysisFilters, cohorts: Cohorts, converted: dict[str, int]) -> Table:
    start, end = _period(filters)
    created: dict[str, tuple[int, int]] = {}
    for (month, _channel), (customers, members) in cohorts.items():
        before = created.get(month, (0, 0))
        created[month] = (before[0] + customers, before[1] + members)
    rows = []
    for month in _months(start, end):
        key = month.strftime("%Y-%m")
        customers, members = created.get(key, (0, 0))
        rows.append(
            Row(
                {
                    "month": key,
                    "customers": customers,
                    "conversions": converted.get(key, 0),
                    "members": members,
                    "conversion": _rate(members, customers),
                },
                filters.customers_link(
                    created_from=max(month, start).isoformat(), created_to=min(_month_last(month), end).isoformat()
                ),
            )
        )
    return Table(
        key="months",
        title=_("New customers and conversions per month"),
        columns=[
            Column("month", _("Month")),
            Column("customers", _("New customers"), "count"),
            Column("conversions", _("Conversions"), "count"),
            Column("members", _("Of them members now"), "count"),
            Column("conversion", _("Conversion rate"), "percent"),
        ],
        rows=rows,
        chart=Chart("line", "month", ("customers", "conversions")),
        note=_(
            "Conversions: customers who became members in the month. Conversion rate: the share of the month's "
            "new customers who are members now."
        ),
    )


def _channel_months_table(filters: AnalysisFilters, context: _Context, cohorts: Cohorts) -> Table:
    """The monthly cohorts' conversion rate, one series per source channel: which channels bring customers who
    go on to buy, and whether that changes."""
    start, end = _period(filters)
    channels = sorted({channel for _month, channel in cohorts if channel}, key=context.position)
    series = tuple(f"channel_{channel}" for channel in channels)
    table_rows = []
    for month in _months(start, end):
        key = month.strftime("%Y-%m")
        cells: dict[str, Any] = {"month": key}
        for channel, column in zip(channels, series, strict=True):
            customers, members = cohorts.get((key, channel), (0, 0))
            cells[column] = _rate(members, customers)
        table_rows.append(
            Row(
                cells,
                filters.customers_link(
                    kind="member",
                    created_from=max(month, start).isoformat(),
                    created_to=min(_month_last(month), end).isoformat(),
                ),
            )
        )
    return Table(
        key="channel_months",
        title=_("Conversion rate per month by source channel"),
        columns=[
            Column("month", _("Month")),
            *(
                Column(column, context.option(channel), "percent")
                for channel, column in zip(channels, series, strict=True)
            ),
        ],
        rows=table_rows,
        chart=Chart("line", "month", series) if series else None,
        note=_("Of the customers each channel brought in the month, the share who are members now."),
    )


async def _weekly_counts(filters: AnalysisFilters) -> list[dict[str, Any]]:
    """Follow-ups of the filters' live customers per author and week over the period of the per-week table.

    Without customer filters they come from follow_up_tally, the live follow-ups per author and day that
    triggers keep exact in the transaction of every follow-up write (see the follow-ups migration that made
    it): a few hundred rows instead of a quarter of a million follow-ups. The follow-ups of the few deleted
    customers are taken off; an author left with none that week is left out, as a count would leave them."""
    start, end = _period(filters, weeks=True)
    low, high = _day_start(start), _day_start(end + timedelta(days=1))
    grouped, week = _week_of("f.happened_at")
    if _has_customer_filters(filters):
        # The filters' customers read from the narrow analysis index.
        where, args = _customers_where(filters, cohort=False)
        return await _raw(
            f"SELECT f.author AS author, {week} AS week, COUNT(*) AS n "  # noqa: S608
            f"FROM {_follow_ups()} WHERE f.deleted_at IS NULL AND f.happened_at >= {{}} AND f.happened_at < {{}} "
            f"AND f.customer IN (SELECT c.id FROM {_customers()} WHERE {where}) GROUP BY f.author, {grouped}",
            low,
            high,
            *args,
        )
    return await _raw(
        "SELECT author, week, SUM(n) AS n FROM ("  # noqa: S608
        f"SELECT NULLIF(t.author, 0) AS author, {_week_of_day('t.day')} AS week, t.live AS n "
        "FROM follow_up_tally t WHERE t.day >= {} AND t.day <= {} "
        # CROSS JOIN: SQLite then starts from the deleted customers, not from every follow-up of the period.
        f"UNION ALL SELECT f.author, {week}, -1 FROM customer d CROSS JOIN follow_up f WHERE f.customer = d.id "
        "AND d.deleted_at IS NOT NULL AND f.deleted_at IS NULL AND f.happened_at >= {} AND f.happened_at < {}"
        ") counted GROUP BY author, week HAVING SUM(n) > 0",
        start,
        end,
        low,
        high,
    )


async def _owners(filters: AnalysisFilters) -> dict[tuple[Any, ...], _Group]:
    """Customers and members per owner (the other figures of these groups stay 0). Without any filter they come
    from customer_tally, which triggers keep exact in the transaction of every customer write (see the customers
    migration that made it): a few rows instead of every customer."""
    if filters.query():
        return await _groups(filters, ["c.owner"])
    groups: dict[tuple[Any, ...], _Group] = {}
    for row in await _raw("SELECT owner, kind, live FROM customer_tally WHERE live > 0"):
        # The tally writes the public pool as owner 0.
        group = groups.setdefault((row["owner"] or None,), _Group())
        group.customers += int(row["live"])
        if row["kind"] == "member":
            group.members += int(row["live"])
    return groups


def _staff_table(
    filters: AnalysisFilters, context: _Context, groups: dict[tuple[Any, ...], _Group], weekly: list[dict[str, Any]]
) -> Table:
    # The follow-ups of the per-week table's weeks: the totals agree with its columns.
    start, end = _period(filters, weeks=True)
    follow_ups: dict[int, int] = {}
    for row in weekly:
        follow_ups[row["author"]] = follow_ups.get(row["author"], 0) + int(row["n"])
    people = {key[0] for key in groups if key[0]} | {author for author in follow_ups if author}
    ordered = sorted(people, key=lambda account_id: context.accounts.get(account_id, ""))
    rows = []
    for account_id in [*ordered, None]:
        group = groups.get((account_id,), _Group())
        if account_id is None and not group.customers:
            continue
        rows.append(
            Row(
                {
                    "owner": context.accounts.get(account_id, "") if account_id else _("Public pool"),
                    "customers": group.customers,
                    "members": group.members,
                    "conversion": group.conversion,
                    "follow_ups": follow_ups.get(account_id, 0) if account_id else None,
                },
                filters.customers_link(owner=account_id or "pool"),
            )
        )
    return Table(
        key="staff",
        title=_("Conversion and follow-ups per staff member"),
        columns=[
            Column("owner", _("Staff member")),
            Column("customers", _("Customers"), "count"),
            Column("members", _("Members"), "count"),
            Column("conversion", _("Conversion rate"), "percent"),
            Column("follow_ups", _("Follow-ups"), "count"),
        ],
        rows=rows,
        chart=Chart("bar", "owner", ("conversion",)),
        note=_(
            "Customers each staff member owns and the share who became members; follow-ups they wrote from "
            "%(start)s to %(end)s.",
            start=start.isoformat(),
            end=end.isoformat(),
        ),
    )


def _weekly_table(filters: AnalysisFilters, context: _Context, counts: list[dict[str, Any]]) -> Table:
    start, end = _period(filters, weeks=True)
    authors = sorted({row["author"] for row in counts if row["author"]}, key=lambda a: context.accounts.get(a, ""))
    per_week: dict[str, dict[str, int]] = {}
    for row in counts:
        if row["author"]:
            week = _week_monday(int(row["week"])).isoformat()
            per_week.setdefault(week, {})[f"staff_{row['author']}"] = int(row["n"])
    weeks, monday = [], start - timedelta(days=start.weekday())
    while monday <= end:
        weeks.append(monday)
        monday += timedelta(days=7)
    series = tuple(f"staff_{author}" for author in authors)
    return Table(
        key="weekly_follow_ups",
        title=_("Follow-ups per staff member per week"),
        columns=[
            Column("week", _("Week of"), "date"),
            *(Column(f"staff_{author}", context.accounts.get(author, ""), "count") for author in authors),
        ],
        rows=[
            Row({"week": week, **{key: per_week.get(week.isoformat(), {}).get(key, 0) for key in series}})
            for week in weeks
        ],
        chart=Chart("line", "week", series) if series else None,
        note=_("Weeks start on Monday."),
    )


@dataclass
class _ChatFigures:
    chats: int = 0
    waits: list[float] = field(default_factory=list)  # seconds to the first answer, of the chats answered
    ratings: list[float] = field(default_factory=list)


async def _chat_figures(filters: AnalysisFilters) -> dict[int, _ChatFigures]:
    """Per staff member, the chats of the period, their waits for a first answer and their ratings.

    PostgreSQL hands each staff member's figures over as arrays, one row per staff member: ten thousand chats a
    year as a row each would make as many Python objects that outlive the view's other reads, and Python's
    collector then stops the process every few pages to go through them all. The values are the same floats."""
    start, end = _period(filters)
    join, where, args = _event_customers(filters, "v.customer")
    wait = f"{_seconds('v.first_response_at')} - {_seconds('v.started_at')}"
    chats = (
        f"FROM conversation v {join} WHERE v.left_message = {{}} AND v.assignee IS NOT NULL "
        f"AND v.started_at >= {{}} AND v.started_at < {{}} AND {where}"
    )
    values = (False, _day_start(start), _day_start(end + timedelta(days=1)), *args)
    if not is_sqlite():
        return {
            row["assignee"]: _ChatFigures(int(row["chats"]), list(row["waits"] or []), list(row["ratings"] or []))
            for row in await _raw(
                f"SELECT v.assignee AS assignee, COUNT(*) AS chats, "
                f"array_agg({wait}) FILTER (WHERE {wait} IS NOT NULL) AS waits, "
                f"array_agg(v.rating::float8) FILTER (WHERE v.rating IS NOT NULL) AS ratings {chats} "
                "GROUP BY v.assignee",
                *values,
            )
        }
    per: dict[int, _ChatFigures] = {}
    for row in await _raw(f"SELECT v.assignee AS assignee, {wait} AS wait, v.rating AS rating {chats}", *values):
        figures = per.setdefault(row["assignee"], _ChatFigures())
        figures.chats += 1
        if row["wait"] is not None:
            figures.waits.append(float(row["wait"]))
        if row["rating"] is not None:
            figures.ratings.append(float(row["rating"]))
    return per


async def _chat_table(filters: AnalysisFilters, context: _Context) -> Table:
    start, end = _period(filters)
    per = await _chat_figures(filters)
    return Table(
        key="chat",
        title=_("Website chat per staff member"),
        columns=[
            Column("staff", _("Staff member")),
            Column("chats", _("Chats"), "count"),
            Column("median_wait", _("Median first response (seconds)"), "count"),
            Column("mean_wait", _("Mean first response (seconds)"), "count"),
            Column("ratings", _("Ratings"), "count"),
            Column("rating", _("Average rating"), "rating"),
        ],
        rows=[
            Row(
                {
                    "staff": context.accounts.get(assignee, ""),
                    "chats": figures.chats,
                    "median_wait": round(statistics.median(figures.waits)) if figures.waits else None,
                    "mean_wait": round(statistics.fmean(figures.waits)) if figures.waits else None,
                    "ratings": len(figures.ratings),
                    "rating": statistics.fmean(figures.ratings) if figures.ratings else None,
                }
            )
            for assignee, figures in sorted(per.items(), key=lambda item: context.accounts.get(item[0], ""))
        ],
        chart=Chart("bar", "staff", ("median_wait",)),
        note=_(
            "Chats started from %(start)s to %(end)s, messages left out of hours not counted. First response: from "
            "the start of the chat to the first answer.",
            start=start.isoformat(),
            end=end.isoformat(),
        ),
    )


async def _feedback_table(filters: AnalysisFilters) -> Table:
    start, end = _period(filters)
    join, where, args = _event_customers(filters, "f.customer")
    grouped, month = _month_of("f.created_at")
    found = {
        row["month"]: row
        for row in await _raw(
            f"SELECT {month} AS month, COUNT(*) AS n, AVG(f.rating) AS rating "  # noqa: S608
            f"FROM feedback f {join} WHERE f.deleted_at IS NULL "
            f"AND f.rating IS NOT NULL AND f.created_at >= {{}} AND f.created_at < {{}} AND {where} "
            f"GROUP BY {grouped}",
            _day_start(start),
            _day_start(end + timedelta(days=1)),
            *args,
        )
    }
    rows = []
    for month in _months(start, end):
        row = found.get(month.strftime("%Y-%m"))
        rows.append(
            Row(
                {
                    "month": month.strftime("%Y-%m"),
                    "ratings": int(row["n"]) if row else 0,
                    "rating": float(row["rating"]) if row and row["rating"] is not None else None,
                }
            )
        )
    return Table(
        key="feedback",
        title=_("Feedback ratings per month"),
        columns=[
            Column("month", _("Month")),
            Column("ratings", _("Ratings"), "count"),
            Column("rating", _("Average rating"), "rating"),
        ],
        rows=rows,
        chart=Chart("line", "month", ("rating",)),
    )


async def _conversion_view(filters: AnalysisFilters, context: _Context) -> View:
    owners, weekly, cohorts, converted, chat, feedback = await _together(
        partial(_owners, filters),
        partial(_weekly_counts, filters),
        partial(_cohorts, filters),
        partial(_conversions, filters),
        partial(_chat_table, filters, context),
        partial(_feedback_table, filters),
    )
    return View(
        "conversion",
        VIEWS["conversion"](),
        [
            _months_table(filters, cohorts, converted),
            _channel_months_table(filters, context, cohorts),
            _staff_table(filters, context, owners, weekly),
            _weekly_table(filters, context, weekly),
            chat,
            feedback,
        ],
    )


# ---------------------------------------------------------------------------------------------------------
# Overview


async def _overview(filters: AnalysisFilters, context: _Context) -> View:
    pareto, cohorts, converted = await _read_together(
        filters, "overview", partial(_pareto, filters), partial(_cohorts, filters), partial(_conversions, filters)
    )
    total = (await _groups(filters, [])).get((), _Group())
    facts = [
        _("%(n)s customers, %(members)s of them members.", n=f"{total.customers:,}", members=f"{total.members:,}"),
        _("Conversion rate: %(rate)s.", rate=f"{total.conversion or 0:.1%}"),
        _("Revenue: %(amount)s.", amount=format_money(total.revenue)),
        _(
            "%(share)s of the customers are active (a contact within %(days)s days).",
            share=f"{_rate(total.active, total.customers) or 0:.1%}",
            days=get_settings().active_days,
        ),
    ]
    if fact := pareto.fact():
        facts.append(fact)
    return View(
        "overview",
        VIEWS["overview"](),
        [
            await _channels_table(filters, context),
            await _tiers_table(filters),
            _months_table(filters, cohorts, converted),
            await _provinces_table(filters, limit=OVERVIEW_PROVINCES),
        ],
        facts=facts,
    )


async def build_view(key: str, filters: AnalysisFilters) -> View:
    """One analysis view under the filters. KeyError for an unknown view."""
    if key not in VIEWS:
        raise KeyError(key)
    # One snapshot and one connection for all of the view's queries.
    async with read_transaction():
        if not is_sqlite():
            await _plan_for_analysis()
        context = await _Context.load()
        token = _PREFETCHED.set(None)
        try:
            return await _view(key, filters, context)
        finally:
            _PREFETCHED.reset(token)


async def _plan_for_analysis() -> None:
    """PostgreSQL planner settings for this transaction only.

    Its default costs picture tables on a spinning disk, so it reads the whole wide customer table rather than
    the analysis indexes that hold every column a view needs, and sorts the project amounts for their quartiles
    on disk: costs for data held in memory instead. A statement the driver has prepared is planned once for
    any filter after a few runs; planning each run for its own filters costs a millisecond, while the one plan
    for all (say, every customer with revenue in revenue order, to keep the few in one province) can cost a
    hundred. And a view runs its statements side by side (`_together`), which keeps the cores busy already:
    parallel workers for each statement on top only make them wait for each other."""
    await _raw(
        "SELECT set_config('random_page_cost', '1.1', true), set_config('work_mem', '32MB', true), "
        "set_config('plan_cache_mode', 'force_custom_plan', true), "
        "set_config('max_parallel_workers_per_gather', '0', true)"
    )


async def _view(key: str, filters: AnalysisFilters, context: _Context) -> View:
    if key == "overview":
        return await _overview(filters, context)
    if key == "channels":
        return await _channels_view(filters, context)
    if key == "prices":
        return await _prices_view(filters, context)
    if key == "regions":
        return await _regions_view(filters)
    if key == "value":
        return await _value_view(filters)
    if key == "activity":
        return await _activity_view(filters, context)
    return await _conversion_view(filters, context)


# ---------------------------------------------------------------------------------------------------------
# Filter choices


@dataclass(frozen=True)
class FilterChoices:
    owners: list[tuple[int, str]]
    channels: list[tuple[int, str]]
    provinces: list[str]


async def filter_choices() -> FilterChoices:
    owners = await Account.select(Account.id, Account.name).where(Account.user.active.eq(True)).order_by(Account.name)
    channels = (
        await OptionItem.select()
        .where(OptionItem.kind == OptionKind.source_channel.value)
        .order_by(OptionItem.position)
        .order_by(OptionItem.id)
    )
    # The next province after the last one found, by one index probe each (customer_live_region leads with the
    # province): some thirty probes instead of reading every customer for a DISTINCT.
    present = {
        row["province"]
        for row in await _raw(
            "WITH RECURSIVE found (province) AS ("
            "SELECT MIN(province) FROM customer WHERE deleted_at IS NULL AND province > '' "
            "UNION ALL SELECT (SELECT MIN(c.province) FROM customer c "
            "WHERE c.deleted_at IS NULL AND c.province > found.province) FROM found WHERE found.province IS NOT NULL"
            ") SELECT province FROM found WHERE province IS NOT NULL"
        )
    }
    return FilterChoices(
        owners=[(row["id"], row["name"]) for row in owners],
        channels=[(row["id"], option_label(row)) for row in channels],
        provinces=sorted(present, key=_province_order),
    )


# ---------------------------------------------------------------------------------------------------------
# Ad spend

_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")


async def ad_spend_entries(filters: AnalysisFilters) -> list[dict[str, Any]]:
    """The entries of the months the date range touches (all without one), newest month first."""
    query = AdSpend.select(
        AdSpend.id,
        AdSpend.month,
        AdSpend.channel.as_alias("channel_id"),
        AdSpend.channel.label.as_alias("label"),
        AdSpend.channel.label_en.as_alias("label_en"),
        AdSpend.amount_fen,
        AdSpend.updated_by.name.as_alias("updated_by"),
        AdSpend.updated_at,
    ).order_by(AdSpend.month, ascending=False)
    query = query.order_by(AdSpend.channel.position)
    if filters.start:
        query = query.where(AdSpend.month >= _month_first(filters.start))
    if filters.end:
        query = query.where(AdSpend.month <= filters.end)
    if filters.channel:
        query = query.where(AdSpend.channel == filters.channel)
    return [
        {
            "id": row["id"],
            "month": row["month"],
            "channel_id": row["channel_id"],
            "channel": option_label(row),
            "amount_fen": row["amount_fen"],
            "updated_by": row["updated_by"] or "",
            "updated_at": row["updated_at"],
        }
        for row in await query
    ]


def _parse_month(raw: str) -> date:
    match = _MONTH.match((raw or "").strip())
    if not match or not 2000 <= int(match.group(1)) <= 2100 or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(raw)
    return date(int(match.group(1)), int(match.group(2)), 1)


async def save_ad_spend(user: CurrentUser, data: dict[str, str]) -> None:
    """Enter what a channel cost in a month (`month` YYYY-MM, `channel` option id, `amount` in yuan, e.g. 12000,
    1.2万 or ¥3,500). A channel has one entry per month: saving again replaces the amount."""
    require_supervisor(user)
    errors: dict[str, str] = {}
    month = channel_id = amount_fen = None
    try:
        month = _parse_month(data.get("month", ""))
    except ValueError:
        errors["month"] = _("Enter a month like 2026-03.")
    try:
        channel_id = await valid_option_id(OptionKind.source_channel, data.get("channel", ""))
    except ValueError:
        channel_id = None
    if channel_id is None:
        errors["channel"] = _("Choose a source channel from the list.")
    amount = (data.get("amount") or "").strip()
    try:
        amount_fen = parse_amount(amount) if amount else None
    except ValueError:
        amount_fen = None
    if amount_fen is None:
        errors["amount"] = _("Enter an amount in yuan, e.g. 12000 or 1.2万.")
    if errors:
        raise FormErrors(errors)
    now = datetime.now(UTC)
    async with transaction():
        before = (
            await AdSpend.select(AdSpend.id, AdSpend.amount_fen)
            .where(AdSpend.channel == channel_id, AdSpend.month == month)
            .first()
        )
        if before is None:
            entry = AdSpend(channel=channel_id, month=month, amount_fen=amount_fen, updated_by=user.account_id)
            await entry.save()
            await core.record(
                actor_id=user.account_id,
                entity="ad_spend",
                entity_id=entry.id,
                action="create",
                changes=core.diff({}, {"channel": channel_id, "month": month, "amount_fen": amount_fen}),
            )
            return
        if before["amount_fen"] == amount_fen:
            return
        await AdSpend.update(
            {AdSpend.amount_fen: amount_fen, AdSpend.updated_by: user.account_id, AdSpend.updated_at: now}
        ).where(AdSpend.id == before["id"])
        await core.record(
            actor_id=user.account_id,
            entity="ad_spend",
            entity_id=before["id"],
            action="update",
            changes={"amount_fen": [before["amount_fen"], amount_fen]},
        )


async def delete_ad_spend(user: CurrentUser, entry_id: int) -> None:
    require_supervisor(user)
    async with transaction():
        before = await AdSpend.select().where(AdSpend.id == entry_id).first()
        if before is None:
            raise NotVisible(entry_id)
        await AdSpend.delete().where(AdSpend.id == entry_id)
        await core.record(
            actor_id=user.account_id,
            entity="ad_spend",
            entity_id=entry_id,
            action="delete",
            changes=core.diff(
                {"channel": before["channel"], "month": before["month"], "amount_fen": before["amount_fen"]},
                {"channel": None, "month": None, "amount_fen": None},
            ),
        )
