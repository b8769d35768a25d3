"""Website chat: the visitor's API (start, messages, poll, end, rate, leave a message), the prospect each new visitor
becomes, the staff panel with its one poll and the header badge, scope, limits, origins and escaping."""

from __future__ import annotations

import dataclasses
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.accounts.service import CurrentUser
from app.accounts.tables import Account
from app.chat import service
from app.chat.tables import ChatHours, ChatMessage, ChatVisitor, Conversation
from app.config import get_settings
from app.customers import service as customers
from app.customers.tables import Customer
from app.feedback.tables import Feedback
from app.followups.tables import FollowUp
from app.i18n import SHANGHAI, local
from app.main import create_app
from tests.conftest import text_of

pytestmark = pytest.mark.db

XSS = [
    "<script>alert('x')</script>",
    '<img src=x onerror="alert(1)">',
    '"><svg onload=alert(1)>',
    "javascript:alert(1)",
    "{{ 7*7 }}<b>粗体</b>",
]


def new_token() -> str:
    return secrets.token_urlsafe(32)


class Visitor:
    """A browser on the company website: its token and the JSON calls its widget makes."""

    def __init__(self, client: AsyncTestClient, token: str | None = None) -> None:
        self.client = client
        self.token = token or new_token()
        self.last_id = 0

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Visitor-Token": self.token}

    async def start(self, **fields: str) -> Any:
        body = {
            "name": "刘海",
            "mobile": "139 8765 4321",
            "question": "你们做矿山地形测绘吗？",
            "page_url": "https://www.example.cn/services?utm_source=baidu&utm_medium=cpc&utm_campaign=2026秋季推广",
            "page_title": "测绘服务 - 云南山川勘测设计",
            "referrer": "https://www.baidu.com/s?wd=测绘",
            "language": "zh-CN",
            "site": "demo",
            **fields,
        }
        return await self.client.post("/chat/api/start", json=body, headers=self.headers)

    async def say(self, body: str) -> Any:
        return await self.client.post("/chat/api/messages", json={"body": body}, headers=self.headers)

    async def poll(self) -> Any:
        response = await self.client.get(f"/chat/api/poll?after={self.last_id}", headers=self.headers)
        if response.status_code == 200:
            self.last_id = response.json()["last_id"]
        return response

    async def state(self) -> Any:
        return (await self.client.get("/chat/api/state", headers=self.headers)).json()


@pytest.fixture
async def visitor(anonymous: AsyncTestClient) -> Visitor:
    return Visitor(anonymous)


async def online(person: CurrentUser) -> None:
    await Account.update({Account.last_seen_at: datetime.now(UTC)}).where(Account.id == person.account_id)


async def conversation_of(visitor: Visitor) -> dict[str, Any]:
    state = await visitor.state()
    row = await Conversation.select().where(Conversation.id == state["conversation"]["id"]).first()
    assert row is not None
    return row


def use_settings(monkeypatch: pytest.MonkeyPatch, **changes: Any) -> None:
    changed = dataclasses.replace(get_settings(), **changes)
    monkeypatch.setattr(service, "get_settings", lambda: changed)


# -- a visitor starts a chat -----------------------------------------------------------------------------------


async def test_a_new_visitor_becomes_a_prospect_from_the_website_chat_with_the_campaign(
    visitor: Visitor, staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    response = await visitor.start()
    assert response.status_code == 201, response.text
    state = response.json()
    assert state["conversation"]["status"] == "open"
    assert [m["body"] for m in state["messages"]] == ["你们做矿山地形测绘吗？"]
    assert state["visitor"] == {"name": "刘海"}

    customer = await Customer.select(Customer.all_columns(), Customer.source_channel.label.as_alias("channel")).first()
    assert customer["name"] == "刘海" and customer["kind"] == "prospect" and customer["mobile"] == "13987654321"
    assert customer["channel"] == "网站在线咨询"
    campaign = (customer["utm_source"], customer["utm_medium"], customer["utm_campaign"])
    assert campaign == ("baidu", "cpc", "2026秋季推广")
    assert customer["owner"] is None and customer["needs"] == "你们做矿山地形测绘吗？"

    conversation = await conversation_of(visitor)
    assert conversation["page_title"] == "测绘服务 - 云南山川勘测设计"
    assert conversation["referrer"].startswith("https://www.baidu.com/")
    assert conversation["unread"] == 1 and conversation["assignee"] is None

    prospects = await staff.get("/customers?kind=prospect")
    row = text_of(prospects.text).split("刘海 139 8765 4321")[1]
    assert row.split()[:1] == ["网站在线咨询"] and "公海" in row
    assert 'title="通过网站在线咨询而来"' in prospects.text


async def test_the_pre_chat_form_explains_what_is_missing_field_by_field(visitor: Visitor) -> None:
    response = await visitor.start(name="", mobile="", question="")
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert set(errors) == {"name", "contact", "question"}
    bad = await visitor.start(mobile="12345", email="not-an-email")
    assert bad.status_code == 422
    assert set(bad.json()["errors"]) == {"mobile", "email"}
    too_long = await visitor.start(question="问" * (service.MESSAGE_MAX + 1))
    assert set(too_long.json()["errors"]) == {"question"}
    assert await Customer.count() == 0 and await Conversation.count() == 0


async def test_a_known_mobile_email_or_wechat_attaches_to_the_customer_but_a_name_alone_never_does(
    anonymous: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    known = await customers.create_customer(
        wang, {"name": "昆明华信勘测设计有限公司", "origin": "own", "mobile": "138 8712 3456", "email": "hx@huaxin.cn"}
    )
    by_mobile = Visitor(anonymous)
    assert (await by_mobile.start(name="华信 张工", mobile="+86 138-8712-3456")).status_code == 201
    by_email = Visitor(anonymous)
    assert (await by_email.start(name="华信", mobile="", email="HX@Huaxin.CN")).status_code == 201
    same_name = Visitor(anonymous)
    assert (await same_name.start(name="昆明华信勘测设计有限公司", mobile="137 0000 1111")).status_code == 201

    assert (await conversation_of(by_mobile))["customer"] == known
    assert (await conversation_of(by_email))["customer"] == known
    assert (await conversation_of(by_mobile))["assignee"] == wang.account_id
    assert (await conversation_of(same_name))["customer"] != known
    assert await Customer.count() == 2


async def test_starting_again_in_a_second_tab_adds_the_question_to_the_open_conversation(visitor: Visitor) -> None:
    await visitor.start()
    again = await visitor.start(question="另外，你们有乙级资质吗？")
    assert again.status_code == 201
    assert [m["body"] for m in again.json()["messages"]] == ["你们做矿山地形测绘吗？", "另外，你们有乙级资质吗？"]
    assert await Conversation.count() == 1 and await Customer.count() == 1


async def test_the_history_comes_back_for_the_same_token_and_no_one_else(anonymous: AsyncTestClient) -> None:
    first = Visitor(anonymous)
    await first.start()
    await first.say("我们在曲靖")
    again = Visitor(anonymous, first.token)
    assert [m["body"] for m in (await again.state())["messages"]] == ["你们做矿山地形测绘吗？", "我们在曲靖"]

    stranger = Visitor(anonymous)
    state = await stranger.state()
    assert state["conversation"] is None and state["messages"] == []
    assert (await stranger.poll()).status_code == 204
    assert (await stranger.say("能看到别人的吗")).status_code == 409


async def test_a_missing_or_forged_token_is_refused(anonymous: AsyncTestClient) -> None:
    for headers in ({}, {"X-Visitor-Token": "short"}, {"X-Visitor-Token": "<script>" * 8}):
        assert (await anonymous.get("/chat/api/state", headers=headers)).status_code == 400
        assert (await anonymous.get("/chat/api/poll?after=0", headers=headers)).status_code == 400


async def test_malformed_requests_get_4xx(visitor: Visitor, anonymous: AsyncTestClient) -> None:
    headers = {**visitor.headers, "Content-Type": "application/json"}
    assert (await anonymous.post("/chat/api/start", content=b"{not json", headers=headers)).status_code == 400
    assert (await anonymous.post("/chat/api/start", content=b"[1, 2]", headers=headers)).status_code == 400
    huge = b'{"question": "' + b"x" * 100_000 + b'"}'
    assert (await anonymous.post("/chat/api/start", content=huge, headers=headers)).status_code == 413
    assert (await anonymous.get("/chat/api/poll?after=abc", headers=visitor.headers)).status_code == 400
    assert (await anonymous.get("/chat/api/poll?after=-1", headers=visitor.headers)).status_code == 400
    weird = await visitor.start(name=["列表"], mobile={"x": 1}, question=12)  # type: ignore[arg-type]
    assert weird.status_code == 422


# -- messages both ways ----------------------------------------------------------------------------------------


async def test_messages_travel_both_ways_and_nothing_new_is_a_204(
    visitor: Visitor, staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    await visitor.start()
    first = await visitor.poll()
    assert first.status_code == 200
    assert (await visitor.poll()).status_code == 204

    conversation = await conversation_of(visitor)
    panel = await staff.get(f"/chat/{conversation['id']}")
    assert panel.status_code == 200 and "你们做矿山地形测绘吗？" in panel.text
    reply = await staff.post(
        f"/chat/{conversation['id']}/messages",
        data={"body": "您好，我们做的。请问矿区在哪个县？"},
        headers={"HX-Request": "true", "HX-Target": "chat-pane"},
    )
    assert reply.status_code == 200

    news = await visitor.poll()
    assert news.status_code == 200
    [message] = news.json()["messages"]
    assert message["author"] == "staff" and message["name"] == "王芳"
    assert message["body"] == "您好，我们做的。请问矿区在哪个县？"
    assert (await visitor.poll()).status_code == 204

    said = await visitor.say("在会泽县")
    assert said.status_code == 201
    assert said.json()["message"]["author"] == "visitor"


async def test_the_first_staff_member_to_answer_takes_the_conversation_and_the_pool_prospect(
    visitor: Visitor, staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    await visitor.start()
    conversation = await conversation_of(visitor)
    await staff.post(f"/chat/{conversation['id']}/messages", data={"body": "您好"})
    after = await conversation_of(visitor)
    assert after["assignee"] == people["wangfang"].account_id
    assert after["first_response_at"] is not None and after["unread"] == 0
    customer = await Customer.select(Customer.owner).where(Customer.id == conversation["customer"]).first()
    assert customer["owner"] == people["wangfang"].account_id


async def test_message_limits_are_explained(visitor: Visitor, monkeypatch: pytest.MonkeyPatch) -> None:
    await visitor.start()
    empty = await visitor.say("   ")
    assert empty.status_code == 422 and "body" in empty.json()["errors"]
    long = await visitor.say("长" * (service.MESSAGE_MAX + 1))
    assert long.status_code == 422 and str(service.MESSAGE_MAX) in long.json()["errors"]["body"]
    assert (await visitor.say("长" * service.MESSAGE_MAX)).status_code == 201

    # Two visitor messages so far (the question and the longest allowed one).
    use_settings(monkeypatch, chat_messages_per_minute=5)
    statuses = [(await visitor.say(f"第{n}条")).status_code for n in range(4)]
    assert statuses == [201, 201, 201, 429]


async def test_starting_chats_is_limited_per_token_and_per_address(
    anonymous: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, chat_starts_per_token_hour=2, chat_starts_per_ip_hour=3)
    one = Visitor(anonymous)
    for _ in range(2):
        assert (await one.start()).status_code == 201
        await anonymous.post("/chat/api/end", json={}, headers=one.headers)
    assert (await one.start()).status_code == 429
    other = Visitor(anonymous)
    assert (await other.start(mobile="137 1111 2222")).status_code == 201
    third = Visitor(anonymous)
    assert (await third.start(mobile="137 1111 3333")).status_code == 429


async def test_a_flood_of_requests_from_one_visitor_gets_429(people: dict[str, CurrentUser]) -> None:
    app = _app_with(chat_requests_per_minute=5)
    async with AsyncTestClient(app=app) as client:
        visitor = Visitor(client)
        statuses = [(await client.get("/chat/api/poll?after=0", headers=visitor.headers)).status_code for _ in range(7)]
        assert statuses[:5] == [204] * 5 and statuses[5:] == [429, 429]
        assert (await client.get("/chat/api/poll?after=0", headers=Visitor(client).headers)).status_code == 204
        refused = await client.get("/chat/api/poll?after=0", headers=visitor.headers)
        assert refused.json() == {"error": "too many requests"} and int(refused.headers["retry-after"]) >= 1


async def test_a_flood_from_one_address_gets_429_whatever_the_tokens(people: dict[str, CurrentUser]) -> None:
    app = _app_with(chat_requests_per_ip_minute=4)
    async with AsyncTestClient(app=app) as client:
        statuses = [
            (await client.get("/chat/api/poll?after=0", headers=Visitor(client).headers)).status_code for _ in range(6)
        ]
        assert statuses == [204] * 4 + [429, 429]
        assert (await client.get("/health")).status_code == 200


def _app_with(**changes: Any) -> Litestar:
    import app.main as main

    changed = dataclasses.replace(get_settings(), **changes)
    original = main.get_settings
    main.get_settings = lambda: changed  # type: ignore[assignment]
    try:
        return create_app()
    finally:
        main.get_settings = original  # type: ignore[assignment]


# -- closing, rating, transcript -------------------------------------------------------------------------------


async def test_staff_close_the_transcript_becomes_a_follow_up_and_the_rating_feedback(
    visitor: Visitor, staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    await visitor.start()
    conversation = await conversation_of(visitor)
    await staff.post(f"/chat/{conversation['id']}/messages", data={"body": "请留下矿区坐标，我们下午联系您。"})
    await visitor.say("好的，谢谢")
    closed = await staff.post(f"/chat/{conversation['id']}/close")
    assert closed.status_code == 200

    news = (await visitor.poll()).json()
    assert news["status"] == "closed" and news["can_rate"] is True
    assert news["messages"][-1]["author"] == "system"
    assert (await visitor.say("还在吗")).status_code == 409

    followup = await FollowUp.select(FollowUp.all_columns(), FollowUp.method.label.as_alias("method_label")).first()
    assert followup["conversation_id"] == conversation["id"] and followup["customer"] == conversation["customer"]
    assert followup["method_label"] == "在线聊天" and followup["author"] == people["wangfang"].account_id
    for line in ("刘海：你们做矿山地形测绘吗？", "王芳：请留下矿区坐标，我们下午联系您。", "刘海：好的，谢谢"):
        assert line in followup["content"]

    rated = await visitor.client.post(
        "/chat/api/rate", json={"rating": 5, "comment": "回复很快"}, headers=visitor.headers
    )
    assert rated.status_code == 201
    feedback = await Feedback.select().first()
    assert (feedback["rating"], feedback["content"], feedback["conversation_id"], feedback["customer"]) == (
        5,
        "回复很快",
        conversation["id"],
        conversation["customer"],
    )
    assert feedback["visitor_contact"] == "13987654321"
    again = await visitor.client.post("/chat/api/rate", json={"rating": 1}, headers=visitor.headers)
    assert again.status_code == 409
    assert (await visitor.state())["conversation"]["rated"] is True

    page = await staff.get(f"/customers/{conversation['customer']}")
    chats = page.text.split('id="conversations"')[1].split("</section>")[0]
    assert "网站咨询记录" in chats and "刘海：你们做矿山地形测绘吗？" in chats and "评分 5/5" in chats


async def test_the_visitor_ends_and_rates_with_checked_input(visitor: Visitor) -> None:
    await visitor.start()
    early = await visitor.client.post("/chat/api/rate", json={"rating": 4}, headers=visitor.headers)
    assert early.status_code == 409
    ended = await visitor.client.post("/chat/api/end", json={}, headers=visitor.headers)
    assert ended.status_code == 200
    assert (await conversation_of(visitor))["closed_by"] == "visitor"
    for bad in ({"rating": 0}, {"rating": 6}, {"rating": "五"}, {"rating": 3, "comment": "长" * 2001}):
        response = await visitor.client.post("/chat/api/rate", json=bad, headers=visitor.headers)
        assert response.status_code == 422, bad
    ok = await visitor.client.post("/chat/api/rate", json={"rating": 3}, headers=visitor.headers)
    assert ok.status_code == 201
    assert (await Feedback.select(Feedback.rating).first())["rating"] == 3
    # A new conversation after the old one ended.
    assert (await visitor.start(question="再问一个问题")).status_code == 201
    assert (await visitor.state())["conversation"]["status"] == "open"


# -- nobody online -------------------------------------------------------------------------------------------


async def test_with_nobody_online_the_widget_offers_to_leave_a_message(
    visitor: Visitor, people: dict[str, CurrentUser]
) -> None:
    assert (await visitor.state())["online"] is False
    await online(people["wangfang"])
    assert (await visitor.state())["online"] is True
    await Account.update({Account.last_seen_at: datetime.now(UTC) - timedelta(seconds=61)}).where(
        Account.id == people["wangfang"].account_id
    )
    assert (await visitor.state())["online"] is False


async def test_business_hours_set_by_the_admin_close_the_chat(
    admin: AsyncTestClient, visitor: Visitor, people: dict[str, CurrentUser]
) -> None:
    await online(people["wangfang"])
    now = local(datetime.now(UTC))
    other_day = str(now.isoweekday() % 7 + 1)
    saved = await admin.post(
        "/admin/chat/hours", data={"limited": "1", "days": other_day, "opens": "09:00", "closes": "18:00"}
    )
    assert saved.status_code == 200  # followed the redirect
    state = await visitor.state()
    assert state["online"] is False and "09:00–18:00" in state["hours"]

    bad = await admin.post("/admin/chat/hours", data={"limited": "1", "opens": "25:00", "closes": "08:00"})
    assert bad.status_code == 422
    assert 'value="25:00"' in bad.text and "field-error" in bad.text
    assert (await ChatHours.select().first())["opens"] == "09:00"
    # The address bar keeps the admin page's address: the post address would answer a reload with 405.
    assert bad.headers["HX-Push-Url"] == "false"


async def test_a_message_left_offline_becomes_a_prospect_and_a_follow_up_due_today(
    visitor: Visitor, people: dict[str, CurrentUser]
) -> None:
    await Account.update({Account.last_seen_at: datetime.now(UTC) - timedelta(hours=2)}).where(
        Account.id == people["liqiang"].account_id
    )
    response = await visitor.client.post(
        "/chat/api/leave-message",
        json={"name": "周敏", "wechat": "zhoumin_km", "question": "想咨询不动产测绘报价，明天上午方便回电。"},
        headers=visitor.headers,
    )
    assert response.status_code == 201, response.text
    customer = await Customer.select().first()
    assert customer["name"] == "周敏" and customer["wechat"] == "zhoumin_km"
    assert customer["owner"] == people["liqiang"].account_id
    assert local(customer["next_follow_up_at"]).date() == datetime.now(SHANGHAI).date()
    followup = await FollowUp.select().first()
    assert followup["author"] == people["liqiang"].account_id and "不动产测绘报价" in followup["content"]
    conversation = await conversation_of(visitor)
    assert conversation["left_message"] and conversation["status"] == "closed"
    assert conversation["unread"] == 0 and conversation["waiting_since"] is None
    assert (await visitor.state())["conversation"]["can_rate"] is False
    rated = await visitor.client.post("/chat/api/rate", json={"rating": 5}, headers=visitor.headers)
    assert rated.status_code == 409 and await Feedback.count() == 0

    invalid = await visitor.client.post(
        "/chat/api/leave-message", json={"name": "周敏", "question": "?"}, headers=visitor.headers
    )
    assert invalid.status_code == 422 and "contact" in invalid.json()["errors"]


# -- staff panel ---------------------------------------------------------------------------------------------


async def test_the_panel_lists_open_conversations_with_unread_counts_and_one_poll_serves_them(
    anonymous: AsyncTestClient, staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    first, second = Visitor(anonymous), Visitor(anonymous)
    await first.start(name="刘海")
    await second.start(name="孙丽", mobile="137 2222 3333", question="在吗")
    await second.say("想问一下价格")

    panel = await staff.get("/chat")
    text = text_of(panel.text)
    assert panel.status_code == 200
    assert text.index("孙丽") < text.index("刘海")  # newest activity first
    assert "想问一下价格" in text

    badge = await staff.get("/chat/badge")
    assert badge.status_code == 200 and 'data-unread="3"' in badge.text
    version = badge.text.split("/chat/badge?v=")[1].split('"')[0]
    assert (await staff.get(f"/chat/badge?v={version}")).status_code == 204

    poll_url = panel.text.split('id="chat-poller"')[1].split('hx-get="')[1].split('"')[0].replace("&amp;", "&")
    assert (await staff.get(poll_url)).status_code == 204
    await first.say("还有人吗")
    changed = await staff.get(poll_url)
    assert changed.status_code == 200 and "还有人吗" in changed.text and 'hx-swap-oob="outerHTML"' in changed.text

    conversation = await conversation_of(first)
    opened = await staff.get(poll_url.replace("c=0", f"c={conversation['id']}"))
    assert opened.status_code == 200
    assert (await conversation_of(first))["unread"] == 0


async def test_staff_see_only_their_own_and_unassigned_conversations(
    anonymous: AsyncTestClient,
    staff: AsyncTestClient,
    other_staff: AsyncTestClient,
    supervisor: AsyncTestClient,
    people: dict[str, CurrentUser],
) -> None:
    wang = people["wangfang"]
    await customers.create_customer(wang, {"name": "王芳的老客户", "origin": "own", "mobile": "138 0000 1234"})
    mine = Visitor(anonymous)
    await mine.start(name="老客户", mobile="13800001234", question="上次的报告")
    conversation = await conversation_of(mine)
    assert conversation["assignee"] == wang.account_id

    assert (await other_staff.get(f"/chat/{conversation['id']}")).status_code == 404
    assert "上次的报告" not in (await other_staff.get("/chat")).text
    sneaky = await other_staff.post(f"/chat/{conversation['id']}/messages", data={"body": "我来回复"})
    assert sneaky.status_code == 404
    assert (await staff.get(f"/chat/{conversation['id']}")).status_code == 200
    assert (await supervisor.get(f"/chat/{conversation['id']}")).status_code == 200

    refused = await staff.post(f"/chat/{conversation['id']}/assign", data={"assignee": "999999"})
    assert refused.status_code == 422 and "field-error" in refused.text
    # 王芳 hands it to 李强, who may then answer; it is no longer hers to hand on.
    li = str(people["liqiang"].account_id)
    handed = await staff.post(f"/chat/{conversation['id']}/assign", data={"assignee": li})
    assert handed.status_code == 200
    assert (await other_staff.get(f"/chat/{conversation['id']}")).status_code == 200
    again = await staff.post(f"/chat/{conversation['id']}/assign", data={"assignee": str(wang.account_id)})
    assert again.status_code == 403
    news = (await mine.poll()).json()
    assert any(m["author"] == "system" and "李强" in m["body"] for m in news["messages"])


async def test_visitor_text_is_never_markup_in_the_panel_the_customer_page_or_the_list(
    anonymous: AsyncTestClient, supervisor: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    for number, payload in enumerate(XSS):
        visitor = Visitor(anonymous)
        response = await visitor.start(name=payload[:100], mobile=f"137 5555 {number:04d}", question=payload)
        assert response.status_code == 201, response.text
        await visitor.say(payload)
    conversation_ids = [row["id"] for row in await Conversation.select(Conversation.id)]
    pages = [await supervisor.get("/chat"), await supervisor.get("/customers?kind=prospect")]
    for conversation_id in conversation_ids:
        pages.append(await supervisor.get(f"/chat/{conversation_id}"))
        row = await Conversation.select(Conversation.customer).where(Conversation.id == conversation_id).first()
        pages.append(await supervisor.get(f"/customers/{row['customer']}"))
    for page in pages:
        assert page.status_code == 200
        assert "<script>alert" not in page.text
        assert "<img src=x" not in page.text
        assert "<svg onload" not in page.text
        assert "<b>粗体</b>" not in page.text
    assert "&lt;script&gt;alert" in pages[0].text


async def test_canned_replies_are_kept_by_an_admin_and_offered_in_the_panel(
    admin: AsyncTestClient, staff: AsyncTestClient, visitor: Visitor
) -> None:
    assert (await staff.get("/admin/chat")).status_code == 403
    empty = await admin.post("/admin/chat/replies", data={"title": "", "body": ""})
    assert empty.status_code == 422 and empty.text.count("field-error") >= 2
    greeting = {"title": "问候", "body": "您好，请问有什么可以帮您？", "active": "1"}
    added = await admin.post("/admin/chat/replies", data=greeting)
    assert added.status_code == 200
    [reply] = await service.canned_replies()
    await visitor.start()
    conversation = await conversation_of(visitor)
    pane = await staff.get(f"/chat/{conversation['id']}")
    assert "您好，请问有什么可以帮您？" in pane.text
    await admin.post(f"/admin/chat/replies/{reply['id']}", data={"title": "问候", "body": "您好", "active": "0"})
    assert await service.canned_replies() == []
    await admin.post(f"/admin/chat/replies/{reply['id']}/delete")
    assert await service.canned_replies(include_inactive=True) == []


# -- embedding -----------------------------------------------------------------------------------------------


async def test_the_widget_page_may_be_framed_only_by_the_allowed_sites(people: dict[str, CurrentUser]) -> None:
    app = _app_with()
    async with AsyncTestClient(app=app) as client:
        page = await client.get("/chat/widget?site=demo&url=https://www.example.cn/&title=首页&lang=zh-CN")
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors 'self'" in policy
        assert page.headers["x-frame-options"] == "SAMEORIGIN"  # the fallback for browsers without CSP
        intranet = await client.get("/login")
        assert "frame-ancestors 'none'" in intranet.headers["content-security-policy"]
        assert (await client.get("/demo-site")).status_code == 200


async def test_writes_from_other_origins_are_refused_and_allowed_ones_get_cors(
    anonymous: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.chat.routes as routes

    changed = dataclasses.replace(get_settings(), chat_origins=["https://www.yunnan-survey.cn"])
    monkeypatch.setattr(routes, "get_settings", lambda: changed)
    visitor = Visitor(anonymous)
    evil = await anonymous.post(
        "/chat/api/start", json={"name": "x"}, headers={**visitor.headers, "Origin": "https://evil.example"}
    )
    assert evil.status_code == 403
    page = await anonymous.get("/chat/widget", headers={"Origin": "https://www.yunnan-survey.cn"})
    assert "https://www.yunnan-survey.cn" in page.headers["content-security-policy"]
    allowed = await anonymous.get(
        "/chat/api/state", headers={**visitor.headers, "Origin": "https://www.yunnan-survey.cn"}
    )
    assert allowed.headers["access-control-allow-origin"] == "https://www.yunnan-survey.cn"
    other = await anonymous.get("/chat/api/state", headers={**visitor.headers, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


async def test_a_visitor_token_reaches_nothing_of_the_intranet(visitor: Visitor) -> None:
    await visitor.start()
    for path in ("/chat", "/chat/1", "/chat/poll", "/chat/badge", "/customers", "/admin/chat"):
        response = await visitor.client.get(path, headers=visitor.headers, follow_redirects=False)
        assert response.status_code in (303, 401), path


async def test_presence_is_written_at_most_every_30_seconds(people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    now = datetime.now(UTC)
    await service.touch_presence(wang, now)
    seen = (await Account.select(Account.last_seen_at).where(Account.id == wang.account_id).first())["last_seen_at"]
    assert abs((seen - now).total_seconds()) < 1
    recently = dataclasses.replace(wang, last_seen_at=now)
    await service.touch_presence(recently, now + timedelta(seconds=10))
    unchanged = await Account.select(Account.last_seen_at).where(Account.id == wang.account_id).first()
    assert unchanged["last_seen_at"] == seen


async def test_the_poll_cursor_never_skips_a_message(visitor: Visitor, people: dict[str, CurrentUser]) -> None:
    await visitor.start()
    conversation = await conversation_of(visitor)
    seen: list[int] = [m["id"] for m in (await visitor.poll()).json()["messages"]]
    for number in range(5):
        await service.reply(people["wangfang"], conversation["id"], f"回复{number}")
        await visitor.say(f"追问{number}")
        news = await visitor.poll()
        seen.extend(m["id"] for m in news.json()["messages"])
    stored = [row["id"] for row in await ChatMessage.select(ChatMessage.id).order_by(ChatMessage.id)]
    assert seen == stored and len(stored) == 11
    assert (await ChatVisitor.select(ChatVisitor.token_hash).first())["token_hash"] != visitor.token
