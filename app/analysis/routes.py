"""Customer analysis pages for supervisors: one page per view with its filters, every table as CSV and XLSX, the
ad spend entered on the channels view, and the A/B/C tier settings with "recompute now" on the value view."""

from __future__ import annotations

from numbers import Number
from typing import Any

from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Response, Template
from markupsafe import Markup, escape

from app import exports
from app.analysis import service
from app.analysis.report import AnalysisFilters, Table, View
from app.customers.service import FormErrors
from app.i18n import format_date, format_money
from app.web import RecordId, form_data, render, see_other, user_of, wants_fragment

BODY = "analysis-body"
TIER_STATUS = "tier-status"


def requires_supervisor(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard: the analysis area is for supervisors and admins; staff get 403 on every page, file and form."""
    if not connection.user.is_supervisor:
        raise PermissionDeniedException()


def view_url(key: str, filters: AnalysisFilters) -> str:
    path = "/analysis" if key == "overview" else f"/analysis/{key}"
    query = filters.query()
    return f"{path}?{query}" if query else path


def _number(value: Any, kind: str) -> int | float | None:
    """A cell as a chart value: money in yuan and shares in per cent, the units of the axes."""
    if value is None or isinstance(value, str):
        return None
    if kind == "money":
        return value / 100
    if kind == "percent":
        return round(value * 100, 2)
    return value if isinstance(value, int) else float(value)


def _label(value: Any, kind: str) -> str:
    """A row's label under its bar, slice or point, written as in the table."""
    if value is None or value == "":
        return "—"
    if kind == "percent":
        return f"{value:.0%}" if round(value * 100, 1) == round(value * 100) else f"{value:.1%}"
    if kind == "money":
        return format_money(value)
    if kind == "date":
        return format_date(value)
    return str(value)


def table_cell(value: Any, kind: str) -> Markup:
    """A table cell as the page writes it. A function rather than a template macro: a view of a few hundred rows
    has a thousand cells, and each macro call costs Jinja some twenty times more."""
    if value is None or value == "":
        return Markup('<span class="muted">—</span>')
    if kind == "money":
        return escape(format_money(value))
    if kind == "percent":
        return escape(f"{value * 100:.1f}%")
    if kind == "rating":
        return escape(f"{value:.1f}")
    if kind in ("count", "days") and isinstance(value, Number):
        return escape(f"{value:,.0f}")
    if kind == "date":
        return escape(format_date(value))
    return escape(value)


def chart_data(table: Table) -> dict[str, Any] | None:
    """What static/js/analysis.js draws: the labels, one list of values per series, and each point's link (None
    where no customer list stands behind the row, e.g. customers without a channel)."""
    if table.chart is None:
        return None
    rows = table.rows
    columns = {column.key: column for column in table.columns}
    labels = columns[table.chart.labels]
    return {
        "kind": table.chart.kind,
        "labels": [_label(row.cells.get(labels.key), labels.kind) for row in rows],
        "links": [row.link for row in rows],
        "series": [
            {
                "label": columns[key].label,
                "kind": columns[key].kind,
                "values": [_number(row.cells.get(key), columns[key].kind) for row in rows],
            }
            for key in table.chart.series
        ],
    }


def _filters(request: Request) -> AnalysisFilters:
    return AnalysisFilters.from_query(dict(request.query_params))


async def _view_or_404(key: str, filters: AnalysisFilters) -> View:
    if key not in service.VIEWS:
        raise NotFoundException()
    return await service.build_view(key, filters)


async def _page(
    request: HTMXRequest, key: str, status_code: int = 200, forms: dict[str, Any] | None = None
) -> Template:
    """The view's page, or only its body when the filter bar asked for it; `forms` holds what a refused form
    had in it and the messages for its fields."""
    filters = _filters(request)
    view = await _view_or_404(key, filters)
    context: dict[str, Any] = {
        "view": view,
        "filters": filters,
        "query": filters.query(),
        "tabs": [(name, title(), view_url(name, filters)) for name, title in service.VIEWS.items()],
        "view_path": view_url(key, AnalysisFilters()),
        "chart_data": chart_data,
        "cell": table_cell,
        **(forms or {}),
    }
    fragment = wants_fragment(request, BODY)
    if key == "channels":
        context["ad_spend"] = await service.ad_spend_entries(filters)
        context.setdefault("ad_spend_form", {})
        context.setdefault("ad_spend_errors", {})
    if key == "value":
        tiers = await service.tier_settings()
        context["tiers"] = tiers
        context.setdefault("tier_form", {"a_share": str(tiers.a_share), "b_share": str(tiers.b_share)})
        context.setdefault("tier_errors", {})
    if not fragment or key == "channels":
        # The filter bar's choices, and the channels of the ad spend form.
        context["choices"] = await service.filter_choices()
    if fragment:
        response = render("analysis/_body.html", status_code=status_code, **context)
        # The address bar gets the filters that are set, not every empty field of the form.
        response.headers["HX-Push-Url"] = view_url(key, filters)
        return response
    return render("analysis/view.html", status_code=status_code, active_nav="analysis", **context)


def _tier_status(tiers: service.TierSettings) -> Template:
    return render("analysis/_tier_status.html", tiers=tiers)


class AnalysisController(Controller):
    path = "/analysis"
    guards = (requires_supervisor,)

    @get("/")
    async def overview(self, request: HTMXRequest) -> Template:
        return await _page(request, "overview")

    @get("/{view_key:str}")
    async def view(self, request: HTMXRequest, view_key: FromPath[str]) -> Template:
        return await _page(request, view_key)

    @get("/{view_key:str}/{file_name:str}")
    async def export(self, request: HTMXRequest, view_key: FromPath[str], file_name: FromPath[str]) -> Response[bytes]:
        """`/analysis/channels/by_channel.csv` (or .xlsx): one table of the view, under the page's filters."""
        table_key, _, extension = file_name.rpartition(".")
        if extension not in exports.TYPES:
            raise NotFoundException()
        view = await _view_or_404(view_key, _filters(request))
        table = view.table(table_key)
        if table is None:
            raise NotFoundException()
        return exports.download(
            extension,
            f"{view.title}-{table.title}",
            f"{view.key}-{table.key}",
            table.columns,
            [row.cells for row in table.rows],
            sheet=table.title,
        )

    # The forms' paths sit beside the views', not under them: a static /analysis/channels/… would hide the
    # view /analysis/channels from Litestar's router.

    # -- ad spend (channels view) ---------------------------------------------------------------------------

    @post("/ad-spend")
    async def save_ad_spend(self, request: HTMXRequest) -> Response[Any]:
        """Saving a channel's month again replaces its amount; the page keeps its filters (the form's URL)."""
        form = await form_data(request)
        try:
            await service.save_ad_spend(user_of(request), form)
        except FormErrors as error:
            forms = {"ad_spend_form": form, "ad_spend_errors": error.errors}
            return await _page(request, "channels", status_code=422, forms=forms)
        return see_other(view_url("channels", _filters(request)) + "#ad-spend")

    @post("/ad-spend/{entry_id:int}/delete")
    async def delete_ad_spend(self, request: HTMXRequest, entry_id: RecordId) -> Response[Any]:
        await service.delete_ad_spend(user_of(request), entry_id)
        return see_other(view_url("channels", _filters(request)) + "#ad-spend")

    # -- A/B/C tiers (value view) ---------------------------------------------------------------------------

    @post("/tiers")
    async def save_tiers(self, request: HTMXRequest) -> Response[Any]:
        form = await form_data(request)
        try:
            await service.save_tier_settings(user_of(request), form)
        except FormErrors as error:
            return await _page(
                request, "value", status_code=422, forms={"tier_form": form, "tier_errors": error.errors}
            )
        return see_other(view_url("value", _filters(request)) + "#tiers")

    @post("/recompute")
    async def recompute(self, request: HTMXRequest) -> Response[Any]:
        """Ask the worker to recompute the tiers now; the status then polls until it has."""
        await service.request_recompute(user_of(request))
        if wants_fragment(request, TIER_STATUS):
            return _tier_status(await service.tier_settings())
        return see_other(view_url("value", _filters(request)) + "#tiers")

    @get("/tier-status")
    async def tier_status(self, request: HTMXRequest) -> Response[Any]:
        """Polled every 2 s while a recompute is pending: 204 (nothing to swap) until the worker is done."""
        tiers = await service.tier_settings()
        if request.htmx and tiers.pending:
            return Response(content=None, status_code=204)
        return _tier_status(tiers)
