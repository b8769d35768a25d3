"""Feedback (反馈): the inbox with its new / handled tabs, replying and reopening, the scope staff see, feedback
staff record on a customer's page, and the entry point the website chat will use."""

from __future__ import annotations

import re

import pytest
from litestar.testing import AsyncTestClient

from app.accounts.service import CurrentUser
from app.core.tables import AuditLog, SearchOutbox
from app.customers import service as customers
from app.customers.service import FormErrors, NotVisible
from app.feedback import service
from app.feedback.tables import Feedback, FeedbackStatus
from app.i18n import _
from tests.conftest import text_of

pytestmark = pytest.mark.db


def htmx(target: str) -> dict[str, str]:
    return {"HX-Request": "true", "HX-Target": target}


async def make_customer(owner: CurrentUser, name: str, mobile: str) -> int:
    return await customers.create_customer(
        owner, {"name": name, "origin": "own", "mobile": mobile, "province": "云南省", "city": "昆明市"}
    )


@pytest.fixture
async def scene(people: dict[str, CurrentUser]) -> dict[str, int]:
    """王芳's customer, 李强's customer and a website visitor, each with one new piece of feedback."""
    wang, li = people["wangfang"], people["liqiang"]
    wang_customer = await make_customer(wang, "昆明华信勘测设计有限公司", "138 8712 3456")
    li_customer = await make_customer(li, "曲靖宏达矿业有限公司", "139 0874 5566")
    return {
        "wang_customer": wang_customer,
        "li_customer": li_customer,
        "wang_feedback": await service.add_customer_feedback(
            wang, wang_customer, {"rating": "4", "content": "测绘成果交付及时，希望报告再详细一些。"}
        ),
        "li_feedback": await service.add_customer_feedback(
            li, li_customer, {"rating": "2", "content": "外业人员到场晚了两天。"}
        ),
        "visitor_feedback": await service.submit_feedback(
            content="网站上的资质证书图片打不开。", rating=3, visitor_name="刘先生", visitor_contact="137 6688 9900"
        ),
    }


# -- inbox --------------------------------------------------------------------------------------------------


async def test_inbox_has_new_and_handled_tabs_with_counts(
    supervisor: AsyncTestClient, people: dict[str, CurrentUser], scene: dict[str, int]
) -> None:
    page = await supervisor.get("/feedback")
    assert page.status_code == 200
    assert 'href="/feedback" aria-current="page"' in page.text
    text = text_of(page.text)
    for content in ("测绘成果交付及时", "外业人员到场晚了两天。", "网站上的资质证书图片打不开。"):
        assert content in text
    assert re.search(r'status=new" aria-current="page"[^>]*>\s*\S+ <span class="count">3</span>', page.text)
    assert "★★★★☆" in text and "★★☆☆☆" in text and "刘先生" in text
    assert f'href="/customers/{scene["wang_customer"]}"' in page.text
    # Newest first.
    assert text.index("网站上的资质证书图片打不开。") < text.index("测绘成果交付及时")

    await service.reply(people["zhangwei"], scene["li_feedback"], "已向客户致歉，并调整了外业排期。")
    handled = await supervisor.get("/feedback?status=handled", headers=htmx("feedback-results"))
    assert handled.status_code == 200 and "<html" not in handled.text
    assert "外业人员到场晚了两天。" in handled.text and "测绘成果交付及时" not in handled.text
    assert '<span class="count">2</span>' in handled.text and '<span class="count">1</span>' in handled.text
    assert "张伟" in handled.text


async def test_inbox_is_paginated_25_to_a_page(supervisor: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    for number in range(30):
        await service.submit_feedback(content=f"第{number + 1}条访客留言", visitor_name="访客")
    first = await service.inbox(people["zhangwei"])
    assert len(first.rows) == 25 and first.pages == 2 and first.counts["new"] == 30
    assert first.rows[0]["content"] == "第30条访客留言"
    second = await supervisor.get("/feedback?status=new&page=2")
    assert second.status_code == 200
    text = text_of(second.text)
    assert "第5条访客留言" in text and "第6条访客留言" not in text
    assert 'rel="prev"' in second.text
    assert (await supervisor.get("/feedback?status=bogus&page=abc")).status_code == 200


async def test_staff_see_feedback_of_their_scope_and_from_visitors_only(
    staff: AsyncTestClient, supervisor: AsyncTestClient, people: dict[str, CurrentUser], scene: dict[str, int]
) -> None:
    wang = people["wangfang"]
    page = await service.inbox(wang)
    assert {row["id"] for row in page.rows} == {scene["wang_feedback"], scene["visitor_feedback"]}
    assert page.counts == {"new": 2, "handled": 0}
    text = text_of((await staff.get("/feedback")).text)
    assert "外业人员到场晚了两天。" not in text and "网站上的资质证书图片打不开。" in text

    li_url = f"/feedback/{scene['li_feedback']}"
    assert (await staff.get(li_url)).status_code == 404
    assert (await staff.post(li_url + "/reply", data={"reply": "好的"})).status_code == 404
    assert (await staff.post(li_url + "/reopen")).status_code == 404
    assert (await staff.get("/feedback/99999999999")).status_code == 400
    with pytest.raises(NotVisible):
        await service.reply(wang, scene["li_feedback"], "好的")

    # A customer back in the public pool is everybody's: so is its feedback.
    await customers.set_owner(people["zhangwei"], scene["li_customer"], None)
    assert (await staff.get(li_url)).status_code == 200
    assert (await supervisor.get(f"/feedback/{scene['wang_feedback']}")).status_code == 200


# -- handling -----------------------------------------------------------------------------------------------


async def test_replying_marks_feedback_handled_with_an_audit_row(
    staff: AsyncTestClient, people: dict[str, CurrentUser], scene: dict[str, int]
) -> None:
    feedback_id = scene["wang_feedback"]
    detail = await staff.get(f"/feedback/{feedback_id}")
    assert detail.status_code == 200
    assert "测绘成果交付及时" in detail.text and 'id="feedback-handling"' in detail.text
    assert 'href="/feedback" aria-current="page"' in detail.text

    response = await staff.post(
        f"/feedback/{feedback_id}/reply",
        data={"reply": "已安排项目负责人补充技术说明。", "action": "reply"},
        headers=htmx("feedback-handling"),
    )
    assert response.status_code == 200 and "<html" not in response.text
    assert "已安排项目负责人补充技术说明。" in response.text and "/reopen" in response.text

    row = await Feedback.select().where(Feedback.id == feedback_id).first()
    assert row["status"] == FeedbackStatus.handled.value
    assert row["handled_by"] == people["wangfang"].account_id and row["handled_at"] is not None
    audit = (
        await AuditLog.select()
        .output(load_json=True)
        .where(AuditLog.entity == "feedback", AuditLog.action == "reply")
        .first()
    )
    assert audit["entity_id"] == feedback_id and audit["customer_id"] == scene["wang_customer"]
    assert audit["actor"] == people["wangfang"].account_id
    assert audit["diff"]["status"] == ["new", "handled"]
    # The reply is searchable too: the change waits in the outbox for the search index.
    assert await SearchOutbox.exists().where(SearchOutbox.entity == "feedback", SearchOutbox.entity_id == feedback_id)

    reopened = await staff.post(f"/feedback/{feedback_id}/reopen", follow_redirects=False)
    assert reopened.status_code == 303 and reopened.headers["location"] == f"/feedback/{feedback_id}"
    row = await Feedback.select().where(Feedback.id == feedback_id).first()
    assert row["status"] == "new" and row["handled_by"] is None
    assert row["reply"] == "已安排项目负责人补充技术说明。"
    assert await AuditLog.exists().where(AuditLog.entity == "feedback", AuditLog.action == "reopen")


async def test_a_reply_is_required_unless_just_marking_handled(staff: AsyncTestClient, scene: dict[str, int]) -> None:
    url = f"/feedback/{scene['visitor_feedback']}/reply"
    missing = await staff.post(url, data={"reply": "  ", "action": "reply"}, headers=htmx("feedback-handling"))
    assert missing.status_code == 422
    assert 'aria-invalid="true"' in missing.text and 'id="feedback-reply-error"' in missing.text
    assert (await Feedback.select(Feedback.status).where(Feedback.id == scene["visitor_feedback"]).first())[
        "status"
    ] == "new"

    marked = await staff.post(url, data={"reply": "", "action": "handle"}, follow_redirects=False)
    assert marked.status_code == 303
    row = await Feedback.select().where(Feedback.id == scene["visitor_feedback"]).first()
    assert row["status"] == "handled" and row["reply"] == ""
    audit = (
        await AuditLog.select()
        .output(load_json=True)
        .where(AuditLog.entity == "feedback", AuditLog.action == "handle")
        .first()
    )
    assert audit["customer_id"] is None


# -- feedback coming in -------------------------------------------------------------------------------------


async def test_staff_record_feedback_a_customer_gave_by_phone(
    staff: AsyncTestClient, people: dict[str, CurrentUser], scene: dict[str, int]
) -> None:
    customer_id = scene["wang_customer"]
    response = await staff.post(
        f"/customers/{customer_id}/feedback",
        data={"rating": "5", "content": "电话里表示对无人机航测成果很满意。", "visitor_name": "陈建国"},
        headers=htmx("feedback"),
    )
    assert response.status_code == 200 and "<html" not in response.text
    assert 'id="feedback"' in response.text
    text = text_of(response.text)
    assert "电话里表示对无人机航测成果很满意。" in text and "★★★★★" in text and "陈建国" in text
    assert text.index("电话里表示对无人机航测成果很满意。") < text.index("测绘成果交付及时")
    row = await Feedback.select().where(Feedback.content == "电话里表示对无人机航测成果很满意。").first()
    assert row["created_by"] == people["wangfang"].account_id and row["customer"] == customer_id
    assert row["status"] == "new"

    invalid = await staff.post(
        f"/customers/{customer_id}/feedback",
        data={"rating": "9", "content": "", "visitor_name": "陈建国"},
        headers=htmx("feedback"),
    )
    assert invalid.status_code == 422
    assert 'id="feedback-new-content-error"' in invalid.text and 'id="feedback-new-rating-error"' in invalid.text
    assert 'value="陈建国"' in invalid.text and _("This field is required.") in invalid.text

    plain = await staff.post(
        f"/customers/{customer_id}/feedback",
        data={"content": "希望增加季度回访。", "_csrf_token": staff.headers["x-csrftoken"]},
        follow_redirects=False,
    )
    assert plain.status_code == 303 and plain.headers["location"] == f"/customers/{customer_id}#feedback"

    other = await staff.post(
        f"/customers/{scene['li_customer']}/feedback", data={"content": "越权记录"}, headers=htmx("feedback")
    )
    assert other.status_code == 404
    assert (await staff.post("/customers/99999999999/feedback", data={"content": "x"})).status_code == 400


async def test_the_chat_can_submit_feedback_for_a_visitor_or_a_customer(
    people: dict[str, CurrentUser], scene: dict[str, int]
) -> None:
    feedback_id = await service.submit_feedback(
        content="客服回复很快，谢谢！", rating=5, visitor_name="访客 7F3A", conversation_id=42
    )
    row = await Feedback.select().where(Feedback.id == feedback_id).first()
    assert row["conversation_id"] == 42 and row["customer"] is None and row["created_by"] is None
    audit = (
        await AuditLog.select()
        .output(load_json=True)
        .where(AuditLog.entity == "feedback", AuditLog.entity_id == feedback_id)
        .first()
    )
    assert audit["actor"] is None and audit["action"] == "create"

    linked = await service.submit_feedback(content="报价清楚。", customer_id=scene["li_customer"], conversation_id=43)
    assert (await Feedback.select(Feedback.customer).where(Feedback.id == linked).first())["customer"] == scene[
        "li_customer"
    ]
    with pytest.raises(FormErrors) as caught:
        await service.submit_feedback(content="", rating=6)
    assert set(caught.value.errors) == {"content", "rating"}
    with pytest.raises(NotVisible):
        await service.submit_feedback(content="找不到的客户", customer_id=999999)

    section = await service.customer_section_context(people["liqiang"], {"id": scene["li_customer"]})
    assert [item["content"] for item in section["feedback_items"]] == ["报价清楚。", "外业人员到场晚了两天。"]
    assert section["feedback_form"] == {} and section["feedback_errors"] == {}


async def test_visitor_text_is_escaped_and_keeps_its_line_breaks(
    supervisor: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    feedback_id = await service.submit_feedback(
        content='<script>alert("x")</script>\n第二行', visitor_name="<b>访客</b>", conversation_id=7
    )
    for url in ("/feedback", f"/feedback/{feedback_id}"):
        html = (await supervisor.get(url)).text
        assert "<script>alert" not in html and "<b>访客</b>" not in html, url
        assert "&lt;b&gt;访客&lt;/b&gt;" in html, url
    detail = (await supervisor.get(f"/feedback/{feedback_id}")).text
    assert "&lt;/script&gt;<br>第二行" in detail


# -- every route: login and CSRF ----------------------------------------------------------------------------


ROUTES = [
    ("GET", "/feedback"),
    ("GET", "/feedback/{f}"),
    ("POST", "/feedback/{f}/reply"),
    ("POST", "/feedback/{f}/reopen"),
    ("POST", "/customers/{c}/feedback"),
]


async def test_every_route_sends_anonymous_visitors_to_the_login_page(
    anonymous: AsyncTestClient, scene: dict[str, int]
) -> None:
    await anonymous.get("/login")
    token = anonymous.cookies.get("csrftoken") or ""
    for method, path in ROUTES:
        url = path.format(f=scene["wang_feedback"], c=scene["wang_customer"])
        response = await anonymous.request(
            method,
            url,
            data={"reply": "匿名", "content": "匿名"},
            headers={"x-csrftoken": token},
            follow_redirects=False,
        )
        assert response.status_code == 303, (method, url)
        assert response.headers["location"].startswith("/login"), (method, url)
    assert await Feedback.count() == 3


async def test_every_write_needs_the_csrf_token(staff: AsyncTestClient, scene: dict[str, int]) -> None:
    token = staff.headers.pop("x-csrftoken")
    try:
        for method, path in ROUTES:
            if method == "GET":
                continue
            url = path.format(f=scene["wang_feedback"], c=scene["wang_customer"])
            response = await staff.request(method, url, data={"reply": "伪造", "content": "伪造"})
            assert response.status_code == 403, (method, url)
    finally:
        staff.headers["x-csrftoken"] = token
    assert await Feedback.count() == 3
    assert (await Feedback.select(Feedback.status).where(Feedback.id == scene["wang_feedback"]).first())[
        "status"
    ] == "new"
