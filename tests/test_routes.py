"""Walk every registered route: anonymous visitors are sent to the login page (except the few public routes),
another staff member's customer answers 404 on every route that names it, and unsafe methods need CSRF."""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.accounts.service import CurrentUser
from app.customers import service
from app.feedback import service as feedback_service
from app.followups import service as followup_service

pytestmark = pytest.mark.db

PUBLIC = {"/login", "/health", "/language", "/demo-site", "/chat/widget"}
# The website chat's visitor API: public, but a request without a visitor token is a 400, never a login redirect.
VISITOR_API = "/chat/api/"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def all_routes(app: Litestar) -> list[tuple[str, str]]:
    """(method, path template) for every handler, static files excepted."""
    found = []
    for route in app.routes:
        if route.path.startswith("/static"):
            continue
        for method in sorted(getattr(route, "methods", ()) or ()):
            if method in ("HEAD", "OPTIONS"):
                continue
            found.append((method, route.path))
    return found


def fill(path: str, ids: dict[str, int]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "field_name":
            return "name"
        return str(ids.get(name, 1))

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)


def test_the_walk_covers_the_features(app: Litestar) -> None:
    paths = {path for _, path in all_routes(app)}
    for expected in (
        "/customers",
        "/customers/{customer_id:int}",
        "/followups/mine",
        "/feedback",
        "/search",
        "/admin/users",
        "/admin/search",
        "/chat",
        "/chat/poll",
        "/chat/api/poll",
        "/admin/chat",
    ):
        assert expected in paths, expected


async def test_every_intranet_route_sends_anonymous_visitors_to_login(
    app: Litestar, anonymous: AsyncTestClient
) -> None:
    await anonymous.get("/login")
    anonymous.headers["x-csrftoken"] = anonymous.cookies.get("csrftoken") or ""
    for method, path in all_routes(app):
        url = fill(path, {})
        response = await anonymous.request(method, url, follow_redirects=False)
        if path in PUBLIC:
            assert response.status_code < 400 or response.status_code == 422, (method, url, response.status_code)
            continue
        if path.startswith(VISITOR_API):
            assert response.status_code == 400, (method, url, response.status_code)
            continue
        assert response.status_code == 303, (method, url, response.status_code)
        assert response.headers["location"].startswith("/login?next="), (method, url)

        htmx = await anonymous.request(method, url, headers={"HX-Request": "true"}, follow_redirects=False)
        assert htmx.headers.get("hx-redirect", "").startswith("/login"), (method, url)


async def test_another_staffs_customer_is_404_on_every_route_that_names_it(
    app: Litestar, staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    li = people["liqiang"]
    customer_id = await service.create_customer(li, {"name": "李强的客户", "origin": "own"})
    ids = {
        "customer_id": customer_id,
        "contact_id": await service.add_contact(li, customer_id, {"name": "刘洋"}),
        "project_id": await service.add_project(li, customer_id, {"name": "测绘项目", "amount": "1000"}),
        "followup_id": await followup_service.add_followup(li, customer_id, {"content": "电话沟通需求"}),
    }
    walked = 0
    for method, path in all_routes(app):
        if "{customer_id" not in path:
            continue
        url = fill(path, ids)
        response = await staff.request(method, url, data={"name": "x", "content": "x", "value": "x"})
        assert response.status_code == 404, (method, url, response.status_code)
        walked += 1
    assert walked >= 20


async def test_feedback_of_another_staffs_customer_is_404(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    li = people["liqiang"]
    customer_id = await service.create_customer(li, {"name": "李强的客户", "origin": "own"})
    feedback_id = await feedback_service.submit_feedback(customer_id=customer_id, content="服务很好", rating=5)
    for method, url in (("GET", f"/feedback/{feedback_id}"), ("POST", f"/feedback/{feedback_id}/reply")):
        response = await staff.request(method, url, data={"reply": "谢谢"})
        assert response.status_code == 404, (method, url)


async def test_unsafe_methods_without_csrf_token_are_refused(
    app: Litestar, staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    customer_id = await service.create_customer(people["wangfang"], {"name": "王芳的客户", "origin": "own"})
    del staff.headers["x-csrftoken"]
    checked = 0
    for method, path in all_routes(app):
        # The visitor API carries no session or cookie to forge; its writes are checked by origin instead.
        if method not in UNSAFE or path == "/login" or path.startswith(VISITOR_API):
            continue
        url = fill(path, {"customer_id": customer_id})
        response = await staff.request(method, url, data={"name": "x"}, follow_redirects=False)
        assert response.status_code == 403, (method, url, response.status_code)
        checked += 1
    assert checked >= 15
    row = await service.get_customer(people["wangfang"], customer_id)
    assert row["name"] == "王芳的客户"


async def test_malformed_ids_and_paths_never_500(staff: AsyncTestClient) -> None:
    for url in (
        "/customers/%00",
        "/customers/1.5",
        "/customers/99999999999999999999",
        "/customers/1/contacts/abc/edit",
        "/feedback/abc",
        "/admin/users/xyz",
        "/customers/1/fields/%3Cscript%3E",
    ):
        response = await staff.get(url)
        assert 400 <= response.status_code < 500, (url, response.status_code)


FORM = {"content-type": "application/x-www-form-urlencoded"}


async def test_malformed_bodies_get_4xx_or_a_clean_answer_never_500(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    customer_id = await service.create_customer(people["wangfang"], {"name": "王芳的客户", "origin": "own"})
    base = f"/customers/{customer_id}"
    cases = [
        ("POST", "/customers", b"--x\r\nbroken", {"content-type": "multipart/form-data"}),
        ("POST", "/customers", b"--x\r\nbroken", {"content-type": "multipart/form-data; boundary=x"}),
        ("POST", "/customers", b"name=%zz&origin=own", FORM),
        ("POST", "/customers", b'{"name": 1}', {"content-type": "application/json"}),
        ("PUT", f"{base}/fields/name", b"\xff\xfe\x00", FORM),
        ("POST", f"{base}/fields/name", b"value=%00%01%E7%94%B2", FORM),
        ("POST", f"{base}/contacts", b"name=" + b"x" * 300_000, FORM),
        ("POST", f"{base}/followups", b"content=a&happened_at=9999-99-99T99:99&next_follow_up_at=0000-00-00", FORM),
        ("POST", f"{base}/projects", b"name=x&amount=1e999999&signed_on=99999-01-01", FORM),
        ("POST", f"{base}/owner", b"owner=99999999999999999999", FORM),
        ("POST", f"{base}/feedback", b"content=%00&rating=11", FORM),
    ]
    for method, url, body, headers in cases:
        response = await staff.request(method, url, content=body, headers=headers)
        assert response.status_code < 500, (method, url, response.status_code)
    row = await service.get_customer(people["wangfang"], customer_id)
    assert "\x00" not in row["name"]


async def test_htmx_errors_land_in_the_notice_area(staff: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    theirs = await service.create_customer(people["liqiang"], {"name": "李强的客户", "origin": "own"})
    response = await staff.get(
        f"/customers/{theirs}/fields/name/edit", headers={"HX-Request": "true", "HX-Target": "field-name"}
    )
    assert response.status_code == 404
    assert response.headers["hx-retarget"] == "#notices"
    assert 'class="notice notice-error"' in response.text and "<html" not in response.text
