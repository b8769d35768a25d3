"""The admin's option lists: source channels, industries, budget bands and follow-up methods.

Every change answers htmx with the list's whole card (an entry's move changes its neighbours too), and a plain
form post with a redirect back to the page, or the page itself with the error when the input was refused.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post, route
from litestar.exceptions import ValidationException
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from app.options import service as options
from app.options.service import KIND_NAMES, OptionError
from app.options.tables import OptionKind
from app.web import RecordId, form_data, not_found, render, requires_admin, see_other, user_of, wants_fragment

MOVES = {"up": -1, "down": 1}


def _kind_or_404(raw: str) -> OptionKind:
    try:
        return OptionKind(raw)
    except ValueError:
        raise not_found() from None


async def _option_or_404(option_id: int) -> dict[str, Any]:
    item = await options.get_option(option_id)
    if item is None:
        raise not_found()
    return item


def _card_id(kind: OptionKind) -> str:
    return f"options-{kind.value}"


async def _option_list(
    kind: OptionKind,
    *,
    editing_id: int | None = None,
    edit_values: dict[str, str] | None = None,
    edit_errors: dict[str, str] | None = None,
    new_values: dict[str, str] | None = None,
    new_errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What one list's card shows: its entries (inactive ones too), an entry being renamed, the add form."""
    return {
        "kind": kind.value,
        "name": KIND_NAMES[kind](),
        "entries": await options.options(kind, include_inactive=True),
        "editing_id": editing_id,
        "edit_values": edit_values,
        "edit_errors": edit_errors or {},
        "new_values": new_values or {},
        "new_errors": new_errors or {},
    }


async def _answer(
    request: HTMXRequest, kind: OptionKind, *, status_code: int = 200, **state: Any
) -> Template | Redirect:
    """The list's card for htmx; otherwise the page after an error, or a redirect to the page after a change."""
    if wants_fragment(request, _card_id(kind)):
        return render("options/_list.html", status_code=status_code, option_list=await _option_list(kind, **state))
    if status_code == 200:
        return see_other(f"/admin/options#{_card_id(kind)}")
    return await _options_page(status_code=status_code, kind=kind, **state)


async def _options_page(*, status_code: int = 200, kind: OptionKind | None = None, **state: Any) -> Template:
    """All four lists; `state` (an entry being renamed, the add form's input) applies to the list `kind`."""
    lists = [await _option_list(each, **(state if each == kind else {})) for each in OptionKind]
    return render("options/options.html", status_code=status_code, lists=lists)


class OptionController(Controller):
    path = "/admin/options"
    guards = (requires_admin,)

    @get("/")
    async def index(self) -> Template:
        return await _options_page()

    @get("/{kind:str}")
    async def option_list(self, request: HTMXRequest, kind: FromPath[str]) -> Template | Redirect:
        return await _answer(request, _kind_or_404(kind))

    @post("/{kind:str}")
    async def add_option(self, request: HTMXRequest, kind: FromPath[str]) -> Template | Redirect:
        option_kind = _kind_or_404(kind)
        form = await form_data(request)
        values = {"label": form.get("label", ""), "label_en": form.get("label_en", "")}
        try:
            await options.add_option(option_kind, values["label"], values["label_en"], actor=user_of(request))
        except OptionError as error:
            return await _answer(
                request, option_kind, status_code=422, new_values=values, new_errors={error.field: error.message}
            )
        return await _answer(request, option_kind)

    @get("/items/{option_id:int}/edit")
    async def edit_option(self, request: HTMXRequest, option_id: RecordId) -> Template:
        item = await _option_or_404(option_id)
        kind = OptionKind(item["kind"])
        if wants_fragment(request, _card_id(kind)):
            return render("options/_list.html", option_list=await _option_list(kind, editing_id=option_id))
        return await _options_page(kind=kind, editing_id=option_id)

    # PUT from htmx; POST from the same form without JavaScript.
    @route("/items/{option_id:int}", http_method=["PUT", "POST"])
    async def rename_option(self, request: HTMXRequest, option_id: RecordId) -> Template | Redirect:
        item = await _option_or_404(option_id)
        kind = OptionKind(item["kind"])
        form = await form_data(request)
        values = {"label": form.get("label", ""), "label_en": form.get("label_en", "")}
        try:
            await options.rename_option(option_id, values["label"], values["label_en"], actor=user_of(request))
        except OptionError as error:
            return await _answer(
                request,
                kind,
                status_code=422,
                editing_id=option_id,
                edit_values=values,
                edit_errors={error.field: error.message},
            )
        return await _answer(request, kind)

    @post("/items/{option_id:int}/active")
    async def set_active(self, request: HTMXRequest, option_id: RecordId) -> Template | Redirect:
        item = await _option_or_404(option_id)
        form = await form_data(request)
        await options.set_option_active(option_id, form.get("active") == "1", actor=user_of(request))
        return await _answer(request, OptionKind(item["kind"]))

    @post("/items/{option_id:int}/move")
    async def move(self, request: HTMXRequest, option_id: RecordId) -> Template | Redirect:
        item = await _option_or_404(option_id)
        form = await form_data(request)
        direction = MOVES.get(form.get("direction", ""))
        if direction is None:
            raise ValidationException()
        await options.move_option(option_id, direction, actor=user_of(request))
        return await _answer(request, OptionKind(item["kind"]))
