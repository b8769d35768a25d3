"""Website chat over HTTP: the public widget page and its JSON API for visitors, the demo company website, the
staff chat panel with its single poll, the header badge, and the admin's hours and canned replies."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from litestar import Controller, Request, get, post
from litestar.exceptions import ClientException
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Response, Template

from app import i18n
from app.chat import service
from app.chat.service import ChatError, Visit
from app.config import get_settings
from app.customers.service import FormErrors
from app.web import RecordId, form_data, render, requires_admin, see_other, user_of, wants_fragment

# The widget's JSON body is small; anything bigger is not from the widget.
BODY_LIMIT = 16 * 1024
PANE = "chat-pane"


# ---------------------------------------------------------------------------------------------------------
# Visitors


def own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def allowed_origin(request: Request, origin: str) -> bool:
    return origin == own_origin(request) or origin in get_settings().chat_origins


def frame_policy(request: Request) -> str:
    """The widget page's Content-Security-Policy: Kehu's own, but it may be framed by the sites in
    KEHU_CHAT_ORIGINS (and Kehu's own demo site)."""
    ancestors = " ".join(["'self'", *get_settings().chat_origins])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        f"font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors {ancestors}"
    )


def _visit(request: Request, data: dict[str, Any]) -> Visit:
    client = request.client.host if request.client else ""
    return Visit.of(data, user_agent=request.headers.get("user-agent", ""), ip=client)


def _token(request: Request) -> str | None:
    return request.headers.get("x-visitor-token")


async def _json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > BODY_LIMIT:
        raise ClientException(status_code=413, detail="too large")
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise ClientException(detail="not JSON") from None
    if not isinstance(data, dict):
        raise ClientException(detail="not an object")
    return data


def _json(content: Any, status_code: int = 200, request: Request | None = None) -> Response[Any]:
    headers = {"Cache-Control": "no-store"}
    origin = request.headers.get("origin", "") if request else ""
    if origin and request is not None and origin in get_settings().chat_origins:
        headers.update({"Access-Control-Allow-Origin": origin, "Vary": "Origin"})
    return Response(content=content, status_code=status_code, headers=headers, media_type="application/json")


def _refused(error: Exception, request: Request) -> Response[Any]:
    if isinstance(error, FormErrors):
        return _json({"errors": error.errors}, 422, request)
    assert isinstance(error, ChatError)
    return _json({"error": error.message}, error.status_code, request)


def _check_origin(request: Request) -> None:
    """A write must come from the widget (Kehu's own pages) or a site allowed to embed it."""
    origin = request.headers.get("origin")
    if origin and not allowed_origin(request, origin):
        raise ClientException(status_code=403, detail="origin not allowed")


def _language(request: Request) -> None:
    """The widget speaks the visitor's browser language (sent as ?lang= by the loader and the widget)."""
    i18n.set_language(request.query_params.get("lang") or request.headers.get("accept-language", "")[:5] or None)


class ChatWidgetController(Controller):
    """Public: what a visitor on the company website reaches. No session, no CSRF cookie: the visitor proves who
    they are with their token, and writes are checked against the allowed origins."""

    path = "/"
    opt: ClassVar[dict[str, Any]] = {"exclude_from_auth": True, "exclude_from_csrf": True}

    @get("/chat/widget")
    async def widget(self, request: Request) -> Template:
        _language(request)
        query = request.query_params
        context = {name: (query.get(key) or "")[: service.CONTEXT_LIMITS[name]] for key, name in _CONTEXT_QUERY}
        return Template(
            template_name="chat/widget.html",
            context={**context, "language": i18n.current_language()},
            # Browsers obey frame-ancestors and ignore X-Frame-Options when both are present; the old header
            # (the app sends DENY) only speaks to browsers that know nothing else, and keeps them same-origin.
            headers={"Content-Security-Policy": frame_policy(request), "X-Frame-Options": "SAMEORIGIN"},
        )

    @get("/demo-site")
    async def demo_site(self) -> Template:
        return Template(template_name="chat/demo_site.html")

    @get("/chat/api/state")
    async def state(self, request: Request) -> Response[Any]:
        _language(request)
        try:
            return _json(await service.state(_token(request)), request=request)
        except ChatError as error:
            return _refused(error, request)

    @get("/chat/api/poll")
    async def poll(self, request: Request) -> Response[Any]:
        _language(request)
        raw = request.query_params.get("after") or "0"
        if not raw.isdigit() or len(raw) > 18:
            raise ClientException(detail="after must be a message id")
        try:
            news = await service.poll(_token(request), int(raw))
        except ChatError as error:
            return _refused(error, request)
        if news is None:
            return Response(content=None, status_code=204, headers={"Cache-Control": "no-store"})
        return _json(news, request=request)

    @post("/chat/api/start")
    async def start(self, request: Request) -> Response[Any]:
        _language(request)
        _check_origin(request)
        data = await _json_body(request)
        try:
            return _json(await service.start(_token(request), data, _visit(request, data)), 201, request)
        except (ChatError, FormErrors) as error:
            return _refused(error, request)

    @post("/chat/api/leave-message")
    async def leave_message(self, request: Request) -> Response[Any]:
        _language(request)
        _check_origin(request)
        data = await _json_body(request)
        try:
            await service.leave_message(_token(request), data, _visit(request, data))
        except (ChatError, FormErrors) as error:
            return _refused(error, request)
        return _json({"ok": True}, 201, request)

    @post("/chat/api/messages")
    async def message(self, request: Request) -> Response[Any]:
        _language(request)
        _check_origin(request)
        data = await _json_body(request)
        try:
            return _json(await service.visitor_says(_token(request), data.get("body")), 201, request)
        except (ChatError, FormErrors) as error:
            return _refused(error, request)

    @post("/chat/api/end")
    async def end(self, request: Request) -> Response[Any]:
        _language(request)
        _check_origin(request)
        await _json_body(request)
        try:
            await service.end_by_visitor(_token(request))
        except ChatError as error:
            return _refused(error, request)
        return _json({"status": "closed", "can_rate": True}, request=request)

    @post("/chat/api/rate")
    async def rate(self, request: Request) -> Response[Any]:
        _language(request)
        _check_origin(request)
        data = await _json_body(request)
        try:
            await service.rate(_token(request), data.get("rating"), data.get("comment"))
        except (ChatError, FormErrors) as error:
            return _refused(error, request)
        return _json({"ok": True}, 201, request)


# Query parameter → context name, for the widget page.
_CONTEXT_QUERY = (("site", "site"), ("url", "page_url"), ("title", "page_title"), ("ref", "referrer"))


# ---------------------------------------------------------------------------------------------------------
# Staff


def _selected(request: HTMXRequest) -> int:
    raw = (request.query_params.get("c") or "").strip()
    return int(raw) if raw.isdigit() and 0 < len(raw) < 10 else 0


def _cursor(request: HTMXRequest, name: str = "after") -> int:
    raw = (request.query_params.get(name) or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 18 else 0


async def _pane(
    request: HTMXRequest, conversation_id: int, *, form: dict[str, str] | None = None, errors: dict | None = None
) -> dict[str, Any]:
    view = await service.open_conversation(user_of(request), conversation_id) if conversation_id else None
    return {"view": view, "reply_form": form or {}, "reply_errors": errors or {}}


async def _panel_page(request: HTMXRequest, conversation_id: int, status_code: int = 200, **pane: Any) -> Template:
    user = user_of(request)
    status = request.query_params.get("status") or "open"
    context = await _pane(request, conversation_id, **pane)
    pulse = await service.pulse(user, everything=True)
    badge = await service.pulse(user)
    status = status if status in ("open", "closed") else "open"
    template = "chat/_pane_response.html" if wants_fragment(request, PANE) else "chat/panel.html"
    return render(
        template,
        status_code=status_code,
        active_nav="chat",
        status=status,
        conversations=await service.conversations(user, status),
        pulse=pulse,
        badge=badge,
        **context,
    )


class ChatController(Controller):
    """The staff chat panel: every open conversation, one at a time in the pane, one poll for all of them."""

    path = "/chat"

    @get("/")
    async def panel(self, request: HTMXRequest) -> Template:
        await service.touch_presence(user_of(request))
        return await _panel_page(request, _selected(request))

    @get("/{conversation_id:int}")
    async def conversation(self, request: HTMXRequest, conversation_id: RecordId) -> Template:
        return await _panel_page(request, conversation_id)

    @get("/poll")
    async def poll(self, request: HTMXRequest) -> Response[Any]:
        """The panel's one poll: the list, new messages of the open conversation and the badge, or 204."""
        user = user_of(request)
        await service.touch_presence(user)
        pulse = await service.pulse(user, everything=True)
        selected, after = _selected(request), _cursor(request)
        visitor_name, messages = await service.new_messages(user, selected, after) if selected else ("", [])
        if pulse.version == request.query_params.get("v") and not messages:
            return Response(content=None, status_code=204)
        status = request.query_params.get("status") or "open"
        changed = any(message["author"] == "system" for message in messages)
        return render(
            "chat/_poll.html",
            pulse=pulse,
            badge=await service.pulse(user),
            conversations=await service.conversations(user, status),
            status=status if status in ("open", "closed") else "open",
            selected=selected,
            visitor_name=visitor_name,
            messages=messages,
            after=messages[-1]["id"] if messages else after,
            **(await _pane(request, selected) if changed else {}),
        )

    @get("/badge")
    async def badge(self, request: HTMXRequest) -> Response[Any]:
        """The header's chat badge on every other page: unread messages and waiting visitors, or 204."""
        user = user_of(request)
        await service.touch_presence(user)
        badge = await service.pulse(user)
        if badge.version == request.query_params.get("v"):
            return Response(content=None, status_code=204)
        return render("chat/_badge.html", badge=badge, polling=True)

    @post("/{conversation_id:int}/messages")
    async def reply(self, request: HTMXRequest, conversation_id: RecordId) -> Template:
        form = await form_data(request)
        try:
            await service.reply(user_of(request), conversation_id, form.get("body", ""))
        except FormErrors as error:
            return await _panel_page(request, conversation_id, 422, form=form, errors=error.errors)
        except service.Closed as error:
            return await _panel_page(request, conversation_id, 409, form=form, errors={"body": error.message})
        return await _panel_page(request, conversation_id)

    @post("/{conversation_id:int}/assign")
    async def assign(self, request: HTMXRequest, conversation_id: RecordId) -> Template:
        form = await form_data(request)
        try:
            await service.assign(user_of(request), conversation_id, form.get("assignee", ""))
        except FormErrors as error:
            return await _panel_page(request, conversation_id, 422, errors=error.errors)
        return await _panel_page(request, conversation_id)

    @post("/{conversation_id:int}/close")
    async def close(self, request: HTMXRequest, conversation_id: RecordId) -> Template:
        await service.close(user_of(request), conversation_id)
        return await _panel_page(request, conversation_id)


class ChatAdminController(Controller):
    """Admin: when the chat is staffed, and the canned replies."""

    path = "/admin/chat"
    guards = (requires_admin,)

    async def _page(
        self, status_code: int = 200, *, hours_form: dict | None = None, errors: dict | None = None, **extra: Any
    ) -> Template:
        hours = await service.hours()
        stored = {
            "limited": "1" if hours.limited else "",
            "days": hours.days,
            "opens": hours.opens,
            "closes": hours.closes,
        }
        return render(
            "chat/admin.html",
            status_code=status_code,
            active_nav="admin",
            hours=hours,
            hours_form=hours_form or stored,
            hours_errors=errors or {},
            replies=await service.canned_replies(include_inactive=True),
            canned_form=extra.pop("canned_form", {}),
            canned_errors=extra.pop("canned_errors", {}),
            **extra,
        )

    @get("/")
    async def index(self) -> Template:
        return await self._page()

    @post("/hours")
    async def save_hours(self, request: HTMXRequest) -> Response[Any]:
        form = await request.form()
        days = [value for value in form.getall("days") if isinstance(value, str)] if "days" in form else []
        data = await form_data(request)
        try:
            await service.set_hours(user_of(request), data, days)
        except FormErrors as error:
            return await self._page(422, hours_form={**data, "days": "".join(days)}, errors=error.errors)
        return see_other("/admin/chat")

    @post("/replies")
    async def add_reply(self, request: HTMXRequest) -> Response[Any]:
        data = await form_data(request)
        try:
            await service.add_canned(user_of(request), data)
        except FormErrors as error:
            return await self._page(422, canned_form=data, canned_errors=error.errors)
        return see_other("/admin/chat")

    @post("/replies/{reply_id:int}")
    async def update_reply(self, request: HTMXRequest, reply_id: RecordId) -> Response[Any]:
        data = await form_data(request)
        try:
            await service.update_canned(user_of(request), reply_id, data)
        except FormErrors as error:
            return await self._page(422, editing=reply_id, edit_form=data, edit_errors=error.errors)
        return see_other("/admin/chat")

    @post("/replies/{reply_id:int}/delete")
    async def delete_reply(self, request: HTMXRequest, reply_id: RecordId) -> Response[Any]:
        await service.delete_canned(user_of(request), reply_id)
        return see_other("/admin/chat")
