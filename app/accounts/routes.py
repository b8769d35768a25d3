"""Logging in and out, choosing a language, one's own account, and the admin's user management."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post, route
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from app import i18n
from app.accounts import service as accounts
from app.accounts.service import AccountError, CurrentUser
from app.accounts.tables import Role
from app.config import get_settings
from app.i18n import _
from app.web import RecordId, form_data, not_found, render, requires_admin, see_other, user_of, wants_fragment

HOME = "/customers"
LANGUAGE_COOKIE_MAX_AGE = 365 * 24 * 3600
# The languages offered, each named in its own language so anyone can find theirs.
LANGUAGES = [("zh-CN", "中文"), ("en", "English")]


def local_path(target: str | None) -> str:
    """Where to go after logging in or switching language: a path on this site, never another host."""
    # "//host" and "/\host" are both read by browsers as a link to another host.
    if target and target.startswith("/") and not target.startswith(("//", "/\\")) and target.isprintable():
        return target
    return HOME


async def _session_user(request: Request) -> CurrentUser | None:
    """The logged-in user on routes that anonymous visitors may also reach (no request.user there)."""
    user_id = request.session.get("user_id")
    return await accounts.load_user(user_id) if isinstance(user_id, int) else None


def _notice(done: str) -> str:
    """The confirmation shown after a post/redirect/get, named by the `done` query parameter."""
    messages = {
        "created": _("The user has been added."),
        "password": _("The password has been changed."),
    }
    return messages.get(done, "")


def _role(raw: str) -> Role:
    try:
        return Role(raw)
    except ValueError:
        raise AccountError("role", _("Choose a role.")) from None


class LoginController(Controller):
    path = "/"

    @get("/login")
    async def login_page(self, request: Request) -> Template | Redirect:
        target = local_path(request.query_params.get("next"))
        if await _session_user(request):
            return see_other(target)
        return render("accounts/login.html", next_path=target, username="", error="")

    @post("/login")
    async def log_in(self, request: Request) -> Template | Redirect:
        form = await form_data(request)
        username = form.get("username", "")
        target = local_path(form.get("next"))
        user = await accounts.authenticate(username, form.get("password", ""))
        if user is None:
            return render(
                "accounts/login.html",
                status_code=422,
                next_path=target,
                username=username,
                error=_("Incorrect username or password."),
            )
        request.set_session({"user_id": user.user_id})
        return see_other(target)

    @post("/logout")
    async def log_out(self, request: Request) -> Redirect:
        request.clear_session()
        return see_other("/login")

    # Open to anonymous visitors too, so the login page can switch language; they only get the cookie.
    @post("/language", exclude_from_auth=True)
    async def choose_language(self, request: Request) -> Redirect:
        form = await form_data(request)
        response = see_other(local_path(form.get("next")))
        # The form offers only the languages we have; anything else changes nothing.
        language = i18n.normalise_language(form.get("language"))
        if language is None:
            return response
        user = await _session_user(request)
        if user is not None:
            await accounts.set_language(user.account_id, language)
        response.set_cookie(
            "lang",
            language,
            max_age=LANGUAGE_COOKIE_MAX_AGE,
            httponly=True,
            samesite="lax",
            secure=get_settings().secure_cookies,
        )
        return response


class AccountController(Controller):
    """Any logged-in person's own account: password and language."""

    path = "/account"

    @get("/")
    async def show(self, request: Request) -> Template:
        notice = _notice(request.query_params.get("done", ""))
        return render("accounts/account.html", languages=LANGUAGES, errors={}, notice=notice)

    @post("/password")
    async def change_password(self, request: Request) -> Template | Redirect:
        form = await form_data(request)
        try:
            await accounts.change_own_password(
                user_of(request),
                current=form.get("current_password", ""),
                new=form.get("password", ""),
                repeat=form.get("password_repeat", ""),
            )
        except AccountError as error:
            return render(
                "accounts/account.html",
                status_code=422,
                languages=LANGUAGES,
                errors={error.field: error.message},
                notice="",
            )
        return see_other("/account?done=password")


async def _account_or_404(account_id: int) -> dict[str, Any]:
    account = await accounts.get_account(account_id)
    if account is None:
        raise not_found()
    return account


def _row_id(account_id: int) -> str:
    return f"user-{account_id}"


async def _users_page(
    *,
    status_code: int = 200,
    notice: str = "",
    editing_id: int | None = None,
    edit_values: dict[str, Any] | None = None,
    edit_errors: dict[str, str] | None = None,
    new_values: dict[str, str] | None = None,
    new_errors: dict[str, str] | None = None,
) -> Template:
    """The user list with the add form; one row may be open for editing (the no-JavaScript way to edit)."""
    return render(
        "accounts/users.html",
        status_code=status_code,
        users=await accounts.list_accounts(),
        roles=list(Role),
        notice=notice,
        editing_id=editing_id,
        edit_values=edit_values,
        edit_errors=edit_errors or {},
        new_values=new_values or {"role": Role.staff.value},
        new_errors=new_errors or {},
    )


def _edit_values(account: dict[str, Any]) -> dict[str, Any]:
    return {"name": account["name"], "role": account["role"], "active": account["user.active"]}


class AdminController(Controller):
    """Admins manage who may log in and with which role."""

    path = "/admin"
    guards = (requires_admin,)

    @get("/")
    async def index(self) -> Redirect:
        return see_other("/admin/users")

    @get("/users")
    async def users(self, request: Request) -> Template:
        return await _users_page(notice=_notice(request.query_params.get("done", "")))

    @post("/users")
    async def create_user(self, request: Request) -> Template | Redirect:
        form = await form_data(request)
        values = {key: form.get(key, "") for key in ("username", "name", "role")}
        try:
            await accounts.create_account(
                username=values["username"],
                password=form.get("password", ""),
                name=values["name"],
                role=_role(values["role"]),
                actor=user_of(request),
            )
        except AccountError as error:
            return await _users_page(status_code=422, new_values=values, new_errors={error.field: error.message})
        return see_other("/admin/users?done=created")

    @get("/users/{account_id:int}")
    async def user_row(self, request: HTMXRequest, account_id: RecordId) -> Template | Redirect:
        account = await _account_or_404(account_id)
        if wants_fragment(request, _row_id(account_id)):
            return render("accounts/_user_row.html", user=account)
        return see_other("/admin/users")

    @get("/users/{account_id:int}/edit")
    async def edit_user(self, request: HTMXRequest, account_id: RecordId) -> Template:
        account = await _account_or_404(account_id)
        if wants_fragment(request, _row_id(account_id)):
            return render(
                "accounts/_user_row_edit.html",
                user=account,
                roles=list(Role),
                edit_values=_edit_values(account),
                edit_errors={},
            )
        return await _users_page(editing_id=account_id, edit_values=_edit_values(account))

    # PUT from htmx in the table row; POST from the same form without JavaScript.
    @route("/users/{account_id:int}", http_method=["PUT", "POST"])
    async def update_user(self, request: HTMXRequest, account_id: RecordId) -> Template | Redirect:
        account = await _account_or_404(account_id)
        form = await form_data(request)
        values = {"name": form.get("name", ""), "role": form.get("role", ""), "active": form.get("active") == "1"}
        in_row = wants_fragment(request, _row_id(account_id))
        try:
            await accounts.update_account(
                account_id,
                name=values["name"],
                role=_role(values["role"]),
                active=values["active"],
                actor=user_of(request),
            )
        except AccountError as error:
            errors = {error.field: error.message}
            if in_row:
                return render(
                    "accounts/_user_row_edit.html",
                    status_code=422,
                    user=account,
                    roles=list(Role),
                    edit_values=values,
                    edit_errors=errors,
                )
            return await _users_page(status_code=422, editing_id=account_id, edit_values=values, edit_errors=errors)
        if in_row:
            return render("accounts/_user_row.html", user=await _account_or_404(account_id))
        return see_other("/admin/users")

    @get("/users/{account_id:int}/password")
    async def password_form(self, account_id: RecordId) -> Template:
        return render("accounts/user_password.html", user=await _account_or_404(account_id), errors={})

    @post("/users/{account_id:int}/password")
    async def reset_password(self, request: Request, account_id: RecordId) -> Template | Redirect:
        account = await _account_or_404(account_id)
        form = await form_data(request)
        try:
            await accounts.set_password(account_id, form.get("password", ""), actor=user_of(request))
        except AccountError as error:
            return render(
                "accounts/user_password.html",
                status_code=422,
                user=account,
                errors={error.field: error.message},
            )
        return see_other("/admin/users?done=password")
