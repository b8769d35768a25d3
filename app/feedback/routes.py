"""Feedback pages: the inbox with its new / handled tabs, one feedback with the reply form, and the feedback card
on the customer page where staff record what a customer told them."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Response, Template

from app.customers import service as customers
from app.customers.service import FormErrors
from app.feedback import service
from app.web import RecordId, form_data, render, see_other, user_of, wants_fragment

RESULTS = "feedback-results"
HANDLING = "feedback-handling"
SECTION = "feedback"


def _page_param(request: HTMXRequest) -> int:
    raw = (request.query_params.get("page") or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 7 else 1


async def _handling(
    request: HTMXRequest,
    feedback_id: int,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    """The status and reply part of a feedback page; the whole page unless htmx asked for that part."""
    item = await service.get_feedback(user_of(request), feedback_id)
    context = {"item": item, "reply_form": form or {"reply": item["reply"]}, "reply_errors": errors or {}}
    if wants_fragment(request, HANDLING):
        return render("feedback/_handling.html", status_code=status_code, **context)
    return render("feedback/detail.html", status_code=status_code, active_nav="feedback", **context)


async def _customer_section(
    request: HTMXRequest,
    customer_id: int,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    user = user_of(request)
    customer = await customers.get_customer(user, customer_id)
    context = await service.customer_section_context(user, customer)
    context.update(feedback_form=form or {}, feedback_errors=errors or {})
    template = "feedback/_customer_section.html" if wants_fragment(request, SECTION) else "feedback/customer.html"
    return render(template, status_code=status_code, customer=customer, active_nav="customers", **context)


class FeedbackController(Controller):
    path = "/"

    @get("/feedback")
    async def index(self, request: HTMXRequest) -> Template:
        page = await service.inbox(
            user_of(request), service.parse_status(request.query_params.get("status")), _page_param(request)
        )
        if wants_fragment(request, RESULTS):
            return render("feedback/_results.html", page=page)
        return render("feedback/index.html", page=page, active_nav="feedback")

    @get("/feedback/{feedback_id:int}")
    async def detail(self, request: HTMXRequest, feedback_id: RecordId) -> Template:
        return await _handling(request, feedback_id)

    @post("/feedback/{feedback_id:int}/reply")
    async def reply(self, request: HTMXRequest, feedback_id: RecordId) -> Response[Any]:
        """Reply and mark handled; the "mark handled" button (action=handle) needs no reply."""
        form = await form_data(request)
        try:
            await service.reply(
                user_of(request), feedback_id, form.get("reply", ""), reply_required=form.get("action") != "handle"
            )
            if not wants_fragment(request, HANDLING):
                return see_other(f"/feedback/{feedback_id}")
            return await _handling(request, feedback_id)
        except FormErrors as error:
            return await _handling(request, feedback_id, form, error.errors, status_code=422)

    @post("/feedback/{feedback_id:int}/reopen")
    async def reopen(self, request: HTMXRequest, feedback_id: RecordId) -> Response[Any]:
        await service.reopen(user_of(request), feedback_id)
        if not wants_fragment(request, HANDLING):
            return see_other(f"/feedback/{feedback_id}")
        return await _handling(request, feedback_id)

    @post("/customers/{customer_id:int}/feedback")
    async def add_for_customer(self, request: HTMXRequest, customer_id: RecordId) -> Response[Any]:
        form = await form_data(request)
        try:
            await service.add_customer_feedback(user_of(request), customer_id, form)
            if not wants_fragment(request, SECTION):
                return see_other(f"/customers/{customer_id}#feedback")
            return await _customer_section(request, customer_id)
        except FormErrors as error:
            return await _customer_section(request, customer_id, form, error.errors, status_code=422)
