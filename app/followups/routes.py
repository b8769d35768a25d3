"""Follow-up pages: "my follow-ups" (who is due when), and the follow-up card on the customer page — add, edit in
place, delete — with plain-form fallbacks for a browser without JavaScript."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post, put
from litestar.exceptions import PermissionDeniedException
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Response, Template

from app.accounts import service as accounts
from app.customers import service as customers
from app.customers.service import FormErrors
from app.followups import service
from app.web import RecordId, form_data, render, see_other, user_of, wants_fragment

SECTION = "followups"


def _item_target(followup_id: int) -> str:
    return f"followup-{followup_id}"


async def _section(
    request: HTMXRequest,
    customer_id: int,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    """The follow-up card; as a page of its own when the browser posted without htmx."""
    user = user_of(request)
    customer = await customers.get_customer(user, customer_id)
    context = await service.section_context(user, customer)
    context.update(followup_form=form or {}, followup_errors=errors or {})
    if wants_fragment(request, SECTION):
        # A follow-up moves the customer's last contact and next follow-up: refresh that card too.
        owners = await accounts.assignable_accounts() if user.is_supervisor else []
        return render(
            "followups/_section.html",
            status_code=status_code,
            customer=customer,
            owners=owners,
            refresh_ownership=True,
            **context,
        )
    return render(
        "followups/customer.html", status_code=status_code, customer=customer, active_nav="customers", **context
    )


async def _edit_form(
    request: HTMXRequest,
    customer_id: int,
    followup: dict[str, Any],
    form: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Template:
    context: dict[str, Any] = {
        "followup": followup,
        "followup_form": form,
        "followup_errors": errors,
        **await service.form_choices(customer_id, followup),
    }
    if wants_fragment(request, _item_target(followup["id"])):
        return render("followups/_item_edit.html", status_code=status_code, **context)
    customer = await customers.get_customer(user_of(request), customer_id)
    return render("followups/edit.html", status_code=status_code, customer=customer, active_nav="customers", **context)


def _owner_param(request: HTMXRequest) -> int | None:
    raw = (request.query_params.get("owner") or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


class FollowUpController(Controller):
    path = "/"

    @get("/followups/mine")
    async def mine(self, request: HTMXRequest) -> Template:
        """The user's customers due for a follow-up; supervisors may look at a staff member's (?owner=ID)."""
        user = user_of(request)
        due = await service.my_followups(user, _owner_param(request))
        if wants_fragment(request, "due-list"):
            return render("followups/_due_list.html", due=due)
        owners = await accounts.assignable_accounts() if user.is_supervisor else []
        return render("followups/mine.html", due=due, owners=owners, active_nav="followups")

    @get("/customers/{customer_id:int}/followups")
    async def section(self, request: HTMXRequest, customer_id: RecordId) -> Template:
        return await _section(request, customer_id)

    @post("/customers/{customer_id:int}/followups")
    async def add(self, request: HTMXRequest, customer_id: RecordId) -> Response[Any]:
        form = await form_data(request)
        try:
            await service.add_followup(user_of(request), customer_id, form)
            if not wants_fragment(request, SECTION):
                return see_other(f"/customers/{customer_id}#followups")
            return await _section(request, customer_id)
        except FormErrors as error:
            return await _section(request, customer_id, form, error.errors, status_code=422)

    @get("/customers/{customer_id:int}/followups/{followup_id:int}")
    async def show(self, request: HTMXRequest, customer_id: RecordId, followup_id: RecordId) -> Response[Any]:
        """The timeline item: what Cancel on the edit form goes back to."""
        followup = await service.get_followup(user_of(request), customer_id, followup_id)
        if not wants_fragment(request, _item_target(followup_id)):
            return see_other(f"/customers/{customer_id}#followup-{followup_id}")
        return render("followups/_item.html", followup=followup)

    @get("/customers/{customer_id:int}/followups/{followup_id:int}/edit")
    async def edit(self, request: HTMXRequest, customer_id: RecordId, followup_id: RecordId) -> Template:
        followup = await service.get_followup(user_of(request), customer_id, followup_id)
        if not followup["can_edit"]:
            raise PermissionDeniedException()
        return await _edit_form(request, customer_id, followup, service.form_values(followup), {})

    @put("/customers/{customer_id:int}/followups/{followup_id:int}")
    async def save(self, request: HTMXRequest, customer_id: RecordId, followup_id: RecordId) -> Response[Any]:
        return await self._save(request, customer_id, followup_id)

    @post("/customers/{customer_id:int}/followups/{followup_id:int}")
    async def save_form(self, request: HTMXRequest, customer_id: RecordId, followup_id: RecordId) -> Response[Any]:
        """The same save for a browser without JavaScript, which can only POST."""
        return await self._save(request, customer_id, followup_id)

    async def _save(self, request: HTMXRequest, customer_id: RecordId, followup_id: RecordId) -> Response[Any]:
        user = user_of(request)
        form = await form_data(request)
        try:
            await service.update_followup(user, customer_id, followup_id, form)
            followup = await service.get_followup(user, customer_id, followup_id)
        except FormErrors as error:
            followup = await service.get_followup(user, customer_id, followup_id)
            return await _edit_form(request, customer_id, followup, form, error.errors, status_code=422)
        if not wants_fragment(request, _item_target(followup_id)):
            return see_other(f"/customers/{customer_id}#followup-{followup_id}")
        return render("followups/_item.html", followup=followup)

    @post("/customers/{customer_id:int}/followups/{followup_id:int}/delete")
    async def delete(self, request: HTMXRequest, customer_id: RecordId, followup_id: RecordId) -> Response[Any]:
        await service.delete_followup(user_of(request), customer_id, followup_id)
        if not wants_fragment(request, SECTION):
            return see_other(f"/customers/{customer_id}#followups")
        return await _section(request, customer_id)
