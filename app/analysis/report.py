"""What an analysis view hands to its page and to its exports: tables of figures, each with the chart drawn from
it and, per row, the customer list that stands behind the row. One shape for every view, so one template draws
them all and one exporter writes any table as CSV or XLSX."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Literal
from urllib.parse import urlencode

from app.regions import PROVINCES, normalise_province

ColumnKind = Literal["text", "count", "money", "percent", "days", "rating", "date"]
ChartKind = Literal["bar", "stacked_bar", "line", "doughnut", "pareto"]


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    # How a cell is shown and exported: count (integer), money (whole fen, shown as ¥), percent (a share 0..1),
    # days, rating (1..5 average), date, or text.
    kind: ColumnKind = "text"


@dataclass
class Row:
    cells: dict[str, Any]
    # The customer list (or another page) showing the customers this row counts; None for a total row.
    link: str | None = None


@dataclass(frozen=True)
class Chart:
    kind: ChartKind
    # The column whose cells label the bars, slices or points, and the columns drawn as series.
    labels: str
    series: tuple[str, ...]


@dataclass
class Table:
    key: str  # unique within its view; names the export file and the anchor
    title: str
    columns: list[Column]
    rows: list[Row]
    chart: Chart | None = None
    note: str = ""  # what the figures mean, in one sentence, shown under the title


@dataclass
class View:
    key: str
    title: str
    tables: list[Table]
    # Headline statements shown above the tables ("20% 的客户带来了 80% 的收入").
    facts: list[str] = field(default_factory=list)

    def table(self, key: str) -> Table | None:
        return next((table for table in self.tables if table.key == key), None)


def _date_or_none(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


@dataclass(frozen=True)
class AnalysisFilters:
    """The filters every view honours; read from and written back to the URL.

    The date range picks customers by the day they came in (created_at): a cohort, so a row's figures and the
    customer list behind it show the same customers. Time series (per month, per week) use the date of each
    event within the range instead."""

    start: date | None = None
    end: date | None = None  # inclusive
    owner: str = ""  # "" everyone | "pool" | an account id
    province: str = ""
    channel: int | None = None
    origin: str = ""  # "" | "own" | "external"

    @classmethod
    def from_query(cls, params: dict[str, str]) -> AnalysisFilters:
        """Unknown or malformed values are dropped, never an error: a hand-edited URL still shows the view."""
        get = lambda key: (params.get(key) or "").strip()  # noqa: E731
        start, end = _date_or_none(get("start")), _date_or_none(get("end"))
        if start and end and start > end:
            start, end = end, start
        owner = get("owner")
        if owner != "pool" and not (owner.isdigit() and len(owner) < 10):
            owner = ""
        province = get("province")
        if province and province not in PROVINCES:
            try:
                province = normalise_province(province)
            except ValueError:
                province = ""
        channel = get("channel")
        return cls(
            start=start,
            end=end,
            owner=owner,
            province=province,
            channel=int(channel) if channel.isdigit() and len(channel) < 10 else None,
            origin=get("origin") if get("origin") in ("own", "external") else "",
        )

    def query(self, **changes: Any) -> str:
        """The URL query of these filters with some changed; empty ones are left out."""
        values = replace(self, **changes)
        params = {
            "start": values.start.isoformat() if values.start else "",
            "end": values.end.isoformat() if values.end else "",
            "owner": values.owner,
            "province": values.province,
            "channel": values.channel or "",
            "origin": values.origin,
        }
        return urlencode({key: value for key, value in params.items() if value not in ("", None)})

    def customers_link(self, kind: str = "prospect", **more: Any) -> str:
        """The customer list showing what a figure counts: these filters plus the row's own (tier, budget,
        city, activity, segment, …); a row's value replaces the filter's (a channel row sets its channel)."""
        params: dict[str, Any] = {
            "kind": kind,
            "owner": self.owner,
            "province": self.province,
            "channel": self.channel or "",
            "origin": self.origin,
            "created_from": self.start.isoformat() if self.start else "",
            "created_to": self.end.isoformat() if self.end else "",
        }
        params.update(more)
        return "/customers?" + urlencode({key: value for key, value in params.items() if value not in ("", None)})
