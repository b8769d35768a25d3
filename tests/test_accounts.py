"""Logging in and out, language, one's own password, and the admin's user management."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from piccolo.apps.user.tables import BaseUser

from app.accounts.service import CurrentUser
from app.accounts.tables import Account
from app.config import get_settings
from app.core.tables import AuditLog
from app.i18n import _
from tests.conftest import PASSWORD, csrf_token, log_in, text_of

pytestmark = pytest.mark.db


async def post_login(client: AsyncTestClient, username: str, password: str, next_path: str = "") -> Any:
    await client.get("/login")
    return await client.post(
        "/login",
        data={"username": username, "password": password, "next": next_path, "_csrf_token": csrf_token(client)},
        follow_redirects=False,
    )


async def audit_rows(account_id: int, action: str) -> list[dict[str, Any]]:
    return (
        await AuditLog.select()
        .where(AuditLog.entity == "account", AuditLog.entity_id == account_id, AuditLog.action == action)
        .output(load_json=True)
    )


def row_headers(account_id: int) -> dict[str, str]:
    """What htmx sends when a link or form in the user's table row targets that row."""
    return {"HX-Request": "true", "HX-Target": f"user-{account_id}"}


# Logging in and out


async def test_login_page_is_open_to_anonymous_visitors(anonymous: AsyncTestClient) -> None:
    page = await anonymous.get("/login")
    assert page.status_code == 200
    assert 'name="username"' in page.text and 'name="password"' in page.text
    assert 'name="_csrf_token"' in page.text


async def test_staff_logs_in_and_lands_on_the_customer_list(
    anonymous: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    response = await post_login(anonymous, "wangfang", PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/customers"
    account = await anonymous.get("/account")
    assert account.status_code == 200
    assert "王芳" in text_of(account.text)


async def test_logging_in_records_the_last_login(anonymous: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    await post_login(anonymous, "wangfang", PASSWORD)
    row = await BaseUser.select(BaseUser.last_login).where(BaseUser.username == "wangfang").first()
    assert row["last_login"] is not None


async def test_wrong_password_shows_the_form_again_with_the_username_kept(
    anonymous: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    response = await post_login(anonymous, "wangfang", "not-her-password")
    assert response.status_code == 422
    assert 'value="wangfang"' in response.text
    assert _("Incorrect username or password.") in text_of(response.text)
    assert (await anonymous.get("/account", follow_redirects=False)).status_code == 303


async def test_unknown_username_gets_the_same_answer_as_a_wrong_password(
    anonymous: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    response = await post_login(anonymous, "zhaoliu", PASSWORD)
    assert response.status_code == 422
    assert _("Incorrect username or password.") in text_of(response.text)


async def test_inactive_user_cannot_log_in(anonymous: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    await BaseUser.update({BaseUser.active: False}).where(BaseUser.username == "liqiang")
    response = await post_login(anonymous, "liqiang", PASSWORD)
    assert response.status_code == 422
    assert _("Incorrect username or password.") in text_of(response.text)


async def test_login_returns_to_the_page_that_was_asked_for(
    anonymous: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    sent_away = await anonymous.get("/customers?tab=prospects", follow_redirects=False)
    assert sent_away.headers["location"].startswith("/login?next=")
    page = await anonymous.get(sent_away.headers["location"])
    assert 'name="next" value="/customers?tab=prospects"' in page.text
    response = await post_login(anonymous, "zhangwei", PASSWORD, next_path="/customers?tab=prospects")
    assert response.headers["location"] == "/customers?tab=prospects"


@pytest.mark.parametrize(
    "next_path",
    ["//evil.example", "//evil.example/login", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"],
)
async def test_login_never_redirects_to_another_site(
    anonymous: AsyncTestClient, people: dict[str, CurrentUser], next_path: str
) -> None:
    page = await anonymous.get("/login", params={"next": next_path})
    assert "evil.example" not in page.text
    response = await post_login(anonymous, "wangfang", PASSWORD, next_path=next_path)
    assert response.status_code == 303
    assert response.headers["location"] == "/customers"


async def test_logged_in_user_opening_the_login_page_goes_straight_on(staff: AsyncTestClient) -> None:
    response = await staff.get("/login", params={"next": "/followups/mine"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/followups/mine"


async def test_logout_ends_the_session(staff: AsyncTestClient) -> None:
    response = await staff.post("/logout", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    after = await staff.get("/account", follow_redirects=False)
    assert after.status_code == 303
    assert after.headers["location"].startswith("/login")


async def test_login_without_csrf_token_is_refused(anonymous: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    await anonymous.get("/login")
    response = await anonymous.post(
        "/login", data={"username": "wangfang", "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 403
    assert (await anonymous.get("/account", follow_redirects=False)).status_code == 303


async def test_logout_without_csrf_token_is_refused(staff: AsyncTestClient) -> None:
    del staff.headers["x-csrftoken"]
    response = await staff.post("/logout", follow_redirects=False)
    assert response.status_code == 403
    assert (await staff.get("/account")).status_code == 200


async def test_login_attempts_are_limited_per_minute(
    anonymous: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    allowed = get_settings().login_attempts_per_minute
    await anonymous.get("/login")
    form = {"username": "wangfang", "password": "guess-again", "_csrf_token": csrf_token(anonymous)}
    for _attempt in range(allowed):
        assert (await anonymous.post("/login", data=form)).status_code == 422
    refused = await anonymous.post("/login", data={**form, "password": PASSWORD}, follow_redirects=False)
    assert refused.status_code == 429
    assert (await anonymous.get("/account", follow_redirects=False)).status_code == 303


# Language


async def test_choosing_english_sets_a_cookie_and_remembers_it_on_the_account(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    response = await staff.post("/language", data={"language": "en", "next": "/account"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    assert response.cookies.get("lang") == "en"
    stored = await Account.select(Account.language).where(Account.id == people["wangfang"].account_id).first()
    assert stored["language"] == "en"
    assert '<html lang="en">' in (await staff.get("/account")).text

    await staff.post("/language", data={"language": "zh-CN", "next": "/account"})
    assert '<html lang="zh-CN">' in (await staff.get("/account")).text


async def test_the_accounts_language_follows_the_user_to_another_browser(
    app: Any, staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    await staff.post("/language", data={"language": "en", "next": "/account"})
    async with AsyncTestClient(app=app) as other_browser:
        await log_in(other_browser, "wangfang")
        assert '<html lang="en">' in (await other_browser.get("/account")).text


async def test_visitor_on_the_login_page_can_switch_language(anonymous: AsyncTestClient) -> None:
    await anonymous.get("/login")
    response = await anonymous.post(
        "/language",
        data={"language": "en", "next": "/login?next=/customers", "_csrf_token": csrf_token(anonymous)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/customers"
    assert response.cookies.get("lang") == "en"
    assert '<html lang="en">' in (await anonymous.get("/login")).text


async def test_language_switch_ignores_unknown_languages_and_foreign_addresses(staff: AsyncTestClient) -> None:
    response = await staff.post(
        "/language", data={"language": "klingon", "next": "//evil.example"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/customers"
    assert "lang" not in response.cookies


# My account


async def test_user_changes_their_own_password(
    app: Any, staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    response = await staff.post(
        "/account/password",
        data={"current_password": PASSWORD, "password": "云南勘察2026", "password_repeat": "云南勘察2026"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/account?done=password"
    assert _("The password has been changed.") in text_of((await staff.get("/account?done=password")).text)
    assert len(await audit_rows(people["wangfang"].account_id, "password")) == 1

    async with AsyncTestClient(app=app) as browser:
        assert (await post_login(browser, "wangfang", PASSWORD)).status_code == 422
        assert (await post_login(browser, "wangfang", "云南勘察2026")).status_code == 303


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        (
            {"current_password": "wrong-password", "password": "kunming-2026", "password_repeat": "kunming-2026"},
            "current_password",
            _("This is not your current password."),
        ),
        (
            {"current_password": PASSWORD, "password": "kunming-2026", "password_repeat": "kunming-2025"},
            "password_repeat",
            _("The two passwords do not match."),
        ),
        (
            {"current_password": PASSWORD, "password": "short", "password_repeat": "short"},
            "password",
            _("At least %(n)s characters.", n=8),
        ),
    ],
)
async def test_password_change_is_refused_with_the_reason_beside_the_field(
    staff: AsyncTestClient, people: dict[str, CurrentUser], form: dict[str, str], field: str, message: str
) -> None:
    response = await staff.post("/account/password", data=form)
    assert response.status_code == 422
    assert f'<span class="field-error" id="account-{field}-error">{message}</span>' in response.text
    assert f'aria-describedby="account-{field}-error"' in response.text
    assert await audit_rows(people["wangfang"].account_id, "password") == []


# Administration: users


async def test_admin_sees_every_user_with_role_status_and_last_login(
    admin: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    await BaseUser.update({BaseUser.active: False}).where(BaseUser.username == "liqiang")
    page = await admin.get("/admin/users")
    assert page.status_code == 200
    text = text_of(page.text)
    for name, username in [("王芳", "wangfang"), ("李强", "liqiang"), ("张伟", "zhangwei"), ("赵敏", "admin")]:
        assert name in text and username in text
    assert _("Supervisor") in text and _("Disabled") in text and _("Never") in text
    assert f'<tr id="user-{people["liqiang"].account_id}" class="muted">' in page.text


async def test_admin_adds_a_user_who_can_then_log_in(
    app: Any, admin: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    response = await admin.post(
        "/admin/users",
        data={"username": "chenjing", "name": "陈静", "role": "supervisor", "password": "chenjing-2026"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/users?done=created"
    page = text_of((await admin.get("/admin/users?done=created")).text)
    assert _("The user has been added.") in page and "陈静" in page

    created = await Account.select(Account.id, Account.role).where(Account.name == "陈静").first()
    assert created["role"] == "supervisor"
    audit = await audit_rows(created["id"], "create")
    assert audit[0]["actor"] == people["admin"].account_id
    assert audit[0]["diff"]["username"] == [None, "chenjing"]

    async with AsyncTestClient(app=app) as browser:
        assert (await post_login(browser, "chenjing", "chenjing-2026")).status_code == 303


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"username": "wangfang", "name": "刘洋", "role": "staff", "password": "liuyang-2026"}, "username",
         _("This username is taken.")),
        ({"username": "", "name": "刘洋", "role": "staff", "password": "liuyang-2026"}, "username",
         _("Enter a username.")),
        ({"username": "liuyang", "name": "刘洋", "role": "staff", "password": "short"}, "password",
         _("At least %(n)s characters.", n=8)),
        ({"username": "liuyang", "name": "刘洋", "role": "boss", "password": "liuyang-2026"}, "role",
         _("Choose a role.")),
    ],
)  # fmt: skip
async def test_new_user_form_keeps_the_input_and_shows_the_error_beside_the_field(
    admin: AsyncTestClient, form: dict[str, str], field: str, message: str
) -> None:
    response = await admin.post("/admin/users", data=form)
    assert response.status_code == 422
    assert f'<span class="field-error" id="new-user-{field}-error">{message}</span>' in response.text
    assert f'aria-describedby="new-user-{field}-error"' in response.text
    assert 'value="刘洋"' in response.text
    if form["username"]:
        assert f'value="{form["username"]}"' in response.text
    assert form["password"] not in response.text
    assert await Account.count().where(Account.name == "刘洋") == 0


async def test_admin_edits_a_user_in_the_table_row(admin: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    wangfang = people["wangfang"].account_id
    form = await admin.get(f"/admin/users/{wangfang}/edit", headers=row_headers(wangfang))
    assert form.status_code == 200
    assert form.text.lstrip().startswith(f'<tr id="user-{wangfang}" class="editing">')
    assert "<html" not in form.text
    assert f'hx-put="/admin/users/{wangfang}"' in form.text and 'value="王芳"' in form.text

    saved = await admin.put(
        f"/admin/users/{wangfang}",
        data={"name": "王芳芳", "role": "supervisor", "active": "1"},
        headers=row_headers(wangfang),
    )
    assert saved.status_code == 200
    assert saved.text.lstrip().startswith(f'<tr id="user-{wangfang}"')
    assert "王芳芳" in text_of(saved.text) and _("Supervisor") in text_of(saved.text)

    audit = await audit_rows(wangfang, "update")
    assert audit[0]["diff"] == {"name": ["王芳", "王芳芳"], "role": ["staff", "supervisor"]}

    cancelled = await admin.get(f"/admin/users/{wangfang}", headers=row_headers(wangfang))
    assert cancelled.text.lstrip().startswith(f'<tr id="user-{wangfang}"')
    assert "hx-put" not in cancelled.text


async def test_row_edit_error_answers_422_with_what_was_typed(
    admin: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wangfang = people["wangfang"].account_id
    response = await admin.put(
        f"/admin/users/{wangfang}", data={"name": "  ", "role": "supervisor"}, headers=row_headers(wangfang)
    )
    assert response.status_code == 422
    assert "<html" not in response.text
    assert (
        f'<span class="field-error" id="user-{wangfang}-name-error">{_("Enter a full name.")}</span>' in response.text
    )
    assert 'aria-invalid="true"' in response.text
    assert '<option value="supervisor" selected>' in response.text
    assert 'name="active" value="1" form="user-' in response.text and " checked" not in response.text
    assert await audit_rows(wangfang, "update") == []


async def test_admin_edits_a_user_without_javascript(admin: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    liqiang = people["liqiang"].account_id
    page = await admin.get(f"/admin/users/{liqiang}/edit")
    assert page.status_code == 200
    assert "<html" in page.text
    assert f'action="/admin/users/{liqiang}"' in page.text and 'value="李强"' in page.text

    refused = await admin.post(f"/admin/users/{liqiang}", data={"name": "", "role": "staff", "active": "1"})
    assert refused.status_code == 422
    assert "<html" in refused.text and _("Enter a full name.") in text_of(refused.text)

    saved = await admin.post(
        f"/admin/users/{liqiang}", data={"name": "李强", "role": "staff", "active": "1"}, follow_redirects=False
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/admin/users"


async def test_deactivated_users_session_stops_working_at_once(
    admin: AsyncTestClient, staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wangfang = people["wangfang"].account_id
    assert (await staff.get("/account")).status_code == 200

    response = await admin.put(
        f"/admin/users/{wangfang}", data={"name": "王芳", "role": "staff"}, headers=row_headers(wangfang)
    )
    assert response.status_code == 200
    assert _("Disabled") in text_of(response.text)
    assert (await audit_rows(wangfang, "update"))[0]["diff"] == {"active": [True, False]}

    after = await staff.get("/account", follow_redirects=False)
    assert after.status_code == 303
    assert after.headers["location"] == "/login?next=/account"
    assert (await post_login(staff, "wangfang", PASSWORD)).status_code == 422


async def test_admin_cannot_deactivate_or_demote_themselves(
    admin: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    me = people["admin"].account_id
    for form in ({"name": "赵敏", "role": "admin"}, {"name": "赵敏", "role": "staff", "active": "1"}):
        response = await admin.put(f"/admin/users/{me}", data=form, headers=row_headers(me))
        assert response.status_code == 422
        assert _("You cannot remove your own admin role or deactivate yourself.") in text_of(response.text)
    assert (await admin.get("/admin/users")).status_code == 200


async def test_admin_resets_a_forgotten_password(
    app: Any, admin: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    zhangwei = people["zhangwei"].account_id
    form = await admin.get(f"/admin/users/{zhangwei}/password")
    assert form.status_code == 200
    assert "张伟" in text_of(form.text)

    refused = await admin.post(f"/admin/users/{zhangwei}/password", data={"password": "1234"})
    assert refused.status_code == 422
    assert (
        f'<span class="field-error" id="reset-password-error">{_("At least %(n)s characters.", n=8)}</span>'
        in refused.text
    )

    done = await admin.post(
        f"/admin/users/{zhangwei}/password", data={"password": "zhangwei-new-1"}, follow_redirects=False
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/users?done=password"
    audit = await audit_rows(zhangwei, "password")
    assert len(audit) == 1 and audit[0]["actor"] == people["admin"].account_id
    async with AsyncTestClient(app=app) as browser:
        assert (await post_login(browser, "zhangwei", "zhangwei-new-1")).status_code == 303


@pytest.mark.parametrize(
    ("path", "status_code"),
    [
        ("/admin/users/424242/edit", 404),
        ("/admin/users/424242/password", 404),
        ("/admin/users/abc/edit", 404),
        ("/admin/users/-1/edit", 400),
        ("/admin/users/0/edit", 400),
        ("/admin/users/99999999999999999999/edit", 400),
    ],
)
async def test_unknown_or_malformed_user_ids_are_not_errors(
    admin: AsyncTestClient, people: dict[str, CurrentUser], path: str, status_code: int
) -> None:
    assert (await admin.get(path)).status_code == status_code


async def test_saving_an_unknown_user_is_404(admin: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    response = await admin.put("/admin/users/424242", data={"name": "孙磊", "role": "staff", "active": "1"})
    assert response.status_code == 404


@pytest.mark.parametrize("username", ["liqiang", "zhangwei"])
async def test_only_admins_reach_user_administration(app: Any, people: dict[str, CurrentUser], username: str) -> None:
    async with AsyncTestClient(app=app) as client:
        await log_in(client, username)
        await try_user_administration(client, people["wangfang"].account_id)
    assert await AuditLog.count() == 0
    assert not await BaseUser.exists().where(BaseUser.username == "hacker")


async def try_user_administration(client: AsyncTestClient, wangfang: int) -> None:
    user_form = {"name": "王芳", "role": "admin", "active": "1"}
    for method, path, data in [
        ("GET", "/admin", None),
        ("GET", "/admin/users", None),
        ("POST", "/admin/users", {"username": "hacker", "name": "黑客", "role": "admin", "password": "x" * 12}),
        ("GET", f"/admin/users/{wangfang}", None),
        ("GET", f"/admin/users/{wangfang}/edit", None),
        ("PUT", f"/admin/users/{wangfang}", user_form),
        ("POST", f"/admin/users/{wangfang}", user_form),
        ("GET", f"/admin/users/{wangfang}/password", None),
        ("POST", f"/admin/users/{wangfang}/password", {"password": "taken-over-1"}),
    ]:
        response = await client.request(method, path, data=data, follow_redirects=False)
        assert response.status_code == 403, (method, path)


async def test_administration_is_in_the_menu_only_for_admins(
    admin: AsyncTestClient, supervisor: AsyncTestClient
) -> None:
    assert 'href="/admin/users"' in (await admin.get("/account")).text
    assert 'href="/admin/users"' not in (await supervisor.get("/account")).text
