"""create_app(): the one place where routes, plugins, middleware and configuration are wired."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Litestar, Request, Response, get
from litestar.config.app import AppConfig
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import ResponseHeader
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    TooManyRequestsException,
)
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.middleware.session.client_side import CookieBackendConfig
from litestar.plugins.htmx import HTMXPlugin, HTMXRequest
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.security.session_auth import SessionAuth
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp, Receive, Scope, Send

from app import db, i18n
from app.accounts import service as accounts
from app.accounts.routes import AccountController, AdminController, LoginController
from app.analysis.routes import AnalysisController
from app.chat import service as chat
from app.chat.limits import limit_chat_requests
from app.chat.routes import ChatAdminController, ChatController, ChatWidgetController
from app.config import ROOT, get_settings
from app.customers.normalize import format_mobile
from app.customers.routes import CustomerController
from app.customers.service import NotVisible
from app.duplicates.routes import DuplicateController
from app.feedback.routes import FeedbackController
from app.find.routes import SearchController, SearchStatusController
from app.followups.routes import FollowUpController
from app.imports.routes import ImportController
from app.labels import customer_field, label, option_label
from app.options.routes import OptionController

# Routes anyone may reach without logging in: the website chat's widget and API, and the demo company website.
PUBLIC_PATHS = ["^/login", "^/static/", "^/health$", "^/chat/widget$", "^/chat/api/", "^/demo-site$"]

SECURITY_HEADERS = [
    ResponseHeader(
        name="Content-Security-Policy",
        value=(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
            "frame-ancestors 'none'"
        ),
    ),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
]


async def retrieve_user(session: dict[str, Any], connection: ASGIConnection) -> accounts.CurrentUser | None:
    user_id = session.get("user_id")
    return await accounts.load_user(user_id) if isinstance(user_id, int) else None


def set_language(request: Request) -> None:
    """Speak the user's language for the rest of this request: account choice, then cookie, then the default."""
    user = request.scope.get("user")
    language = getattr(user, "language", None) or request.cookies.get("lang") or get_settings().language
    i18n.set_language(language)


async def speak_users_language(request: Request) -> None:
    # Async on purpose: Litestar runs a sync hook in a worker thread, where the context variable would be lost.
    set_language(request)


def _error_page(request: Request, status_code: int, title: str, message: str = "") -> Response[Any]:
    if isinstance(request, HTMXRequest) and request.htmx:
        # An htmx request shows the message in the notice area instead of replacing what it targeted.
        return Template(
            template_name="_notice.html",
            context={"message": message or title, "level": "error"},
            status_code=status_code,
            headers={"HX-Retarget": "#notices", "HX-Reswap": "beforeend"},
        )
    return Template(
        template_name="error.html",
        context={"status_code": status_code, "title": title, "message": message},
        status_code=status_code,
    )


def on_not_authorized(request: Request, exc: Exception) -> Response[Any]:
    """Anonymous intranet requests go to the login page (htmx gets HX-Redirect so the whole page moves)."""
    target = "/login?next=" + quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    if request.headers.get("hx-request"):
        return Response(content=None, status_code=401, headers={"HX-Redirect": target})
    return Redirect(path=target, status_code=303)


def on_http_error(request: Request, exc: Exception) -> Response[Any]:
    set_language(request)
    status_code = getattr(exc, "status_code", 500)
    titles = {
        400: i18n._("The request could not be understood."),
        403: i18n._("You do not have access to this page."),
        404: i18n._("Not found."),
        405: i18n._("This action is not allowed here."),
        # A body over a route's limit (an upload): Litestar refuses it before the route sees it.
        413: i18n._("What was sent is too large. Choose a smaller file."),
        429: i18n._("Too many attempts. Please wait a minute and try again."),
    }
    title = titles.get(status_code) or i18n._("Something went wrong.")
    if isinstance(exc, NotAuthorizedException):
        return on_not_authorized(request, exc)
    return _error_page(request, status_code, title)


def on_not_visible(request: Request, exc: Exception) -> Response[Any]:
    """A record that does not exist, is deleted, or is outside the user's scope: the same 404 for all three, so
    nobody learns that a colleague's customer exists."""
    return on_http_error(request, NotFoundException())


def on_not_permitted(request: Request, exc: Exception) -> Response[Any]:
    return on_http_error(request, PermissionDeniedException())


def on_server_error(request: Request, exc: Exception) -> Response[Any]:
    request.logger.exception("unhandled error", exc_info=exc)
    set_language(request)
    return _error_page(request, HTTP_500_INTERNAL_SERVER_ERROR, i18n._("Something went wrong."))


async def keep_the_address_of_a_refused_form(response: Response[Any]) -> Response[Any]:
    """A boosted form that is refused (422) shows its messages where it was, but htmx would put the post address
    in the address bar, which answers a reload with 405: the address stays that of the page instead, unless the
    route named one. Async on purpose: Litestar runs a plain function here in a worker thread, on every
    response, which cost the chat's polls a thread hop each."""
    if response.status_code == 422 and not {"hx-push-url", "hx-replace-url"} & {
        key.lower() for key in response.headers
    }:
        response.headers["HX-Push-Url"] = "false"
    return response


def _jinja() -> Environment:
    env = Environment(
        loader=FileSystemLoader(ROOT / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        # Looking for edited templates costs a stat per template and include on every page: only while developing.
        auto_reload=get_settings().debug,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["_"] = i18n.template_gettext
    env.globals.update(
        current_language=i18n.current_language,
        label=label,
        option_label=option_label,
        customer_field=customer_field,
        system_text=chat.system_text,
        waited=chat.waited,
        message_max=chat.MESSAGE_MAX,
        chat_channel=chat.WEBSITE_CHANNEL,
    )
    env.filters.update(
        time_or_date=i18n.format_time_or_date,
        mobile=format_mobile,
        readable_url=unquote,
        datetime=i18n.format_datetime,
        date=i18n.format_date,
        money=i18n.format_money,
    )
    return env


@get("/health", exclude_from_auth=True, sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/", sync_to_thread=False)
def home() -> Redirect:
    return Redirect(path="/customers", status_code=303)


async def _is_login_attempt(request: Request) -> bool:
    # Async on purpose: Litestar runs a plain function here in a worker thread, on every request.
    return request.method == "POST" and request.url.path == "/login"


def _session_secret(secret_key: str) -> bytes:
    return hashlib.sha256(("kehu-session:" + secret_key).encode()).digest()


async def _on_startup() -> None:
    await db.prepare()
    # What is loaded by now (the framework, the routes, the ORM's tables) lives as long as the process: out of the
    # cyclic garbage collector's sight, a full collection no longer walks its 300,000 objects (about 100 ms on this
    # machine's 2 cores, every few seconds under the chat's polls, while every request of the worker waits).
    gc.freeze()


async def _on_shutdown() -> None:
    await db.close()


# Paths that need no page-wide read transaction: no database at all, or the chat, whose polls read one row and
# may note the staff member's presence.
NO_READ_TRANSACTION = ("/static/", "/health", "/chat", "/demo-site")


def read_in_one_transaction(app: ASGIApp) -> ASGIApp:
    """Run each page view (GET) in one read transaction, the session's user lookup included; see
    db.read_transaction. GET handlers never write."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        reads = scope["type"] == "http" and scope["method"] in ("GET", "HEAD")
        if reads and not scope["path"].startswith(NO_READ_TRANSACTION):
            async with db.read_transaction():
                await app(scope, receive, send)
        else:
            await app(scope, receive, send)

    return middleware


def _outermost(middleware: Callable[[ASGIApp], ASGIApp]) -> Callable[[AppConfig], AppConfig]:
    """An on_app_init hook that puts a middleware before the ones other hooks inserted (the session's user)."""

    def hook(app_config: AppConfig) -> AppConfig:
        app_config.middleware.insert(0, middleware)
        return app_config

    return hook


def create_app() -> Litestar:
    settings = get_settings()
    session_auth = SessionAuth[accounts.CurrentUser, Any](
        retrieve_user_handler=retrieve_user,
        session_backend_config=CookieBackendConfig(
            secret=_session_secret(settings.secret_key),
            httponly=True,
            samesite="lax",
            secure=settings.secure_cookies,
            max_age=14 * 24 * 3600,
        ),
        exclude=PUBLIC_PATHS,
    )
    login_rate_limit = RateLimitConfig(
        rate_limit=("minute", settings.login_attempts_per_minute),
        check_throttle_handler=_is_login_attempt,
    )
    csrf = CSRFConfig(
        secret=settings.secret_key,
        cookie_httponly=True,
        cookie_samesite="lax",
        cookie_secure=settings.secure_cookies,
    )
    static_dir = Path(ROOT / "static")
    return Litestar(
        route_handlers=[
            health,
            home,
            LoginController,
            AccountController,
            AdminController,
            OptionController,
            CustomerController,
            FollowUpController,
            ImportController,
            FeedbackController,
            AnalysisController,
            DuplicateController,
            ChatController,
            ChatWidgetController,
            ChatAdminController,
            SearchController,
            SearchStatusController,
            create_static_files_router(path="/static", directories=[static_dir], opt={"exclude_from_auth": True}),
        ],
        on_app_init=[session_auth.on_app_init, _outermost(read_in_one_transaction)],
        on_startup=[_on_startup],
        on_shutdown=[_on_shutdown],
        middleware=[
            login_rate_limit.middleware,
            limit_chat_requests(settings.chat_requests_per_minute, settings.chat_requests_per_ip_minute),
        ],
        before_request=speak_users_language,
        after_request=keep_the_address_of_a_refused_form,
        csrf_config=csrf,
        plugins=[HTMXPlugin()],
        request_class=HTMXRequest,
        template_config=TemplateConfig(instance=JinjaTemplateEngine.from_environment(_jinja())),
        response_headers=SECURITY_HEADERS,
        exception_handlers={
            NotAuthorizedException: on_not_authorized,
            PermissionDeniedException: on_http_error,
            NotFoundException: on_http_error,
            TooManyRequestsException: on_http_error,
            HTTPException: on_http_error,
            NotVisible: on_not_visible,
            PermissionError: on_not_permitted,
            HTTP_500_INTERNAL_SERVER_ERROR: on_server_error,
        },
        debug=settings.debug,
    )


app = create_app()
