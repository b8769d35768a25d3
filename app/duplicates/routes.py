"""The duplicate finder's pages for supervisors: the pairs to review, a pair side by side with the merge form,
"not a duplicate", the merges with their undo, and "scan now". Staff get 404 here, as outside their scope."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import QueryParameter
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Response, Template

from app.customers.service import FormErrors
from app.db import MAX_ID
from app.duplicates import service
from app.web import RecordId, form_data, render, see_other, user_of, wants_fragment

SCAN_STATUS = "scan-status"

Word = Annotated[str, QueryParameter(max_length=20)]
Page = Annotated[int, QueryParameter(ge=1, le=100_000)]
OptionalId = Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)]


def requires_supervisor(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard: reviewing and merging duplicates is for supervisors and admins; to staff the area does not exist."""
    if not connection.user.is_supervisor:
        raise NotFoundException()


def _scan_status(state: service.ScanState) -> Template:
    return render("duplicates/_scan_status.html", scan=state)


async def _pair_page(request: HTMXRequest, pair_id: int, status_code: int = 200, **form: Any) -> Template:
    user = user_of(request)
    pair = await service.get_pair(user, pair_id)
    comparison = await service.compare(user, pair, form.get("values"))
    return render(
        "duplicates/pair.html",
        status_code=status_code,
        active_nav="duplicates",
        pair=pair,
        comparison=comparison,
        errors=form.get("errors", {}),
        both=service.BOTH,
    )


async def _merges_page(request: HTMXRequest, status_code: int = 200, error: str = "") -> Template:
    merges = await service.list_merges(user_of(request))
    return render(
        "duplicates/merges.html", status_code=status_code, active_nav="duplicates", merges=merges, error=error
    )


class DuplicateController(Controller):
    path = "/duplicates"
    guards = (requires_supervisor,)

    @get("/")
    async def pairs(
        self, request: HTMXRequest, tab: Word = "open", page: Page = 1, customer: OptionalId = None, reason: Word = ""
    ) -> Template:
        """The pairs to review (or those dismissed), most certain first; `customer` keeps one customer's pairs,
        `reason` those found for one reason."""
        pairs = await service.list_pairs(user_of(request), tab=tab, page=page, customer_id=customer, reason=reason)
        return render(
            "duplicates/pairs.html",
            active_nav="duplicates",
            page=pairs,
            scan=await service.scan_state(),
            reason_names=service.REASONS,
        )

    @post("/scan")
    async def scan(self, request: HTMXRequest) -> Response[Any]:
        """Ask the worker to scan the whole database now; the status then polls until it has."""
        await service.request_scan(user_of(request))
        if wants_fragment(request, SCAN_STATUS):
            return _scan_status(await service.scan_state())
        return see_other("/duplicates")

    @get("/scan-status")
    async def scan_status(self, request: HTMXRequest) -> Response[Any]:
        """Polled every 2 s while a scan is pending: 204 (nothing to swap) until the worker is done."""
        state = await service.scan_state()
        if request.htmx and state.pending:
            return Response(content=None, status_code=204)
        return _scan_status(state)

    @get("/customer/{customer_id:int}")
    async def customer_link(self, request: HTMXRequest, customer_id: RecordId) -> Template:
        """The note on a customer's page that it may have duplicates, loaded after the page (empty if none)."""
        count = await service.open_pairs_of(customer_id)
        return render("duplicates/_customer_link.html", customer_id=customer_id, count=count)

    @get("/pairs/{pair_id:int}")
    async def pair(self, request: HTMXRequest, pair_id: RecordId) -> Template:
        return await _pair_page(request, pair_id)

    @post("/pairs/{pair_id:int}/merge")
    async def merge(self, request: HTMXRequest, pair_id: RecordId) -> Response[Any]:
        form = await form_data(request)
        try:
            merge_id = await service.merge(user_of(request), pair_id, form)
        except FormErrors as error:
            return await _pair_page(request, pair_id, status_code=422, values=form, errors=error.errors)
        return see_other(f"/duplicates/merges#merge-{merge_id}")

    @post("/pairs/{pair_id:int}/dismiss")
    async def dismiss(self, request: HTMXRequest, pair_id: RecordId) -> Response[Any]:
        await service.dismiss_pair(user_of(request), pair_id)
        if wants_fragment(request, f"pair-{pair_id}"):
            return Response(content="", status_code=200)
        return see_other("/duplicates")

    @post("/pairs/{pair_id:int}/reopen")
    async def reopen(self, request: HTMXRequest, pair_id: RecordId) -> Response[Any]:
        await service.reopen_pair(user_of(request), pair_id)
        if wants_fragment(request, f"pair-{pair_id}"):
            return Response(content="", status_code=200)
        return see_other("/duplicates?tab=dismissed")

    @get("/merges")
    async def merges(self, request: HTMXRequest) -> Template:
        return await _merges_page(request)

    @post("/merges/{merge_id:int}/undo")
    async def undo(self, request: HTMXRequest, merge_id: RecordId) -> Response[Any]:
        try:
            await service.undo_merge(user_of(request), merge_id)
        except service.CannotUndo as error:
            return await _merges_page(request, status_code=422, error=str(error))
        return see_other(f"/duplicates/merges#merge-{merge_id}")
