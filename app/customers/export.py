"""The customer list as a spreadsheet: the rows of the list view the user is looking at (its tab, filters, sort
and the user's scope), with the columns they choose, for app.exports to write as CSV or XLSX."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.analysis.report import Column, ColumnKind
from app.customers.service import FIELDS
from app.i18n import _, format_datetime
from app.labels import label, option_label


@dataclass(frozen=True)
class ExportColumn:
    key: str
    label: Callable[[], str]
    kind: ColumnKind = "text"
    # The cell from a customer row (as get_customer reads it); by default the stored value of `key`.
    value: Callable[[dict[str, Any]], Any] | None = None

    def cell(self, row: dict[str, Any]) -> Any:
        return self.value(row) if self.value is not None else row.get(self.key)

    def column(self) -> Column:
        return Column(self.key, self.label(), self.kind)


def _option(name: str) -> Callable[[dict[str, Any]], str]:
    return lambda row: option_label(row, f"{name}_")


def _field(name: str) -> ExportColumn:
    spec = FIELDS[name]
    if spec.widget == "option":
        return ExportColumn(name, spec.label, value=_option(name))
    if name in ("origin", "value_tier"):
        return ExportColumn(name, spec.label, value=lambda row: label(row[name]))
    return ExportColumn(name, spec.label)


COLUMNS: dict[str, ExportColumn] = {
    column.key: column
    for column in [
        ExportColumn("id", lambda: _("Customer number"), "count"),
        *(_field(name) for name in FIELDS if name != "utm_medium"),
        ExportColumn("kind", lambda: _("Prospect or member"), value=lambda row: label(row["kind"])),
        ExportColumn("rfm_segment", lambda: _("RFM segment"), value=lambda row: label(row["rfm_segment"] or None)),
        ExportColumn("owner", lambda: _("Owner"), value=lambda row: row["owner_name"] or _("Public pool")),
        ExportColumn("revenue", lambda: _("Revenue"), "money", value=lambda row: row["revenue_fen"]),
        ExportColumn("created_at", lambda: _("Date added"), "date"),
        ExportColumn("last_contact_at", lambda: _("Last contact"), "date"),
        ExportColumn("next_follow_up_at", lambda: _("Next follow-up"), "date"),
        ExportColumn("converted_at", lambda: _("Became a member"), "date"),
    ]
}

# What the export form offers ticked: how to reach the customer and where they stand.
DEFAULT_COLUMNS = (
    "name",
    "company",
    "mobile",
    "email",
    "wechat",
    "province",
    "city",
    "source_channel",
    "owner",
    "value_tier",
    "last_contact_at",
)


# A follow-up export has these columns, always.
FOLLOW_UP_COLUMNS = [
    ExportColumn("customer_name", lambda: _("Customer")),
    ExportColumn("happened_at", lambda: _("Time"), value=lambda row: format_datetime(row["happened_at"])),
    ExportColumn("method", lambda: _("Method"), value=_option("method")),
    ExportColumn("contact_name", lambda: _("Contact")),
    ExportColumn("author_name", lambda: _("Recorded by")),
    ExportColumn("content", lambda: _("What happened")),
    ExportColumn("outcome", lambda: _("Outcome")),
    ExportColumn("next_follow_up_at", lambda: _("Next follow-up"), "date"),
]


def chosen_columns(keys: list[str]) -> list[ExportColumn]:
    """The columns asked for, in the form's order; unknown keys are left out. None asked: the defaults."""
    wanted = set(keys) & set(COLUMNS)
    return [column for key, column in COLUMNS.items() if key in wanted] or [COLUMNS[key] for key in DEFAULT_COLUMNS]


def table_rows(columns: list[ExportColumn], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{column.key: column.cell(row) for column in columns} for row in rows]
