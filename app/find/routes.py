"""The search box: GET /search answers the header's dropdown, the results part of the search page, or the whole
page; and the admin's search status page."""

from __future__ import annotations

from urllib.parse import quote

from litestar import Controller, get
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template

from app.find import service
from app.web import render, requires_admin, user_of, wants_fragment

DROPDOWN = "topsearch-results"
RESULTS = "search-results"


class SearchController(Controller):
    path = "/search"

    @get("/")
    async def index(self, request: HTMXRequest) -> Template:
        user = user_of(request)
        raw = request.query_params.get("q")
        if wants_fragment(request, DROPDOWN):
            results = await service.find(user, raw, limit=service.DROPDOWN_LIMIT)
            return render("find/_results.html", results=results, dropdown=True)
        results = await service.find(user, raw, limit=service.PAGE_LIMIT)
        if wants_fragment(request, RESULTS):
            response = render("find/_results.html", results=results, dropdown=False)
            response.headers["HX-Push-Url"] = ("/search?q=" + quote(results.query)) if results.query else "/search"
            return response
        return render("find/index.html", results=results, dropdown=False)


class SearchStatusController(Controller):
    """Admins see whether search answers and keeps up with the database."""

    path = "/admin/search"
    guards = (requires_admin,)

    @get("/")
    async def status(self) -> Template:
        return render("find/status.html", health=await service.search_health(), active_nav="admin")
