"""`kehu demo`: realistic Chinese demo data whose denormalised columns agree with the rows they summarise."""

from __future__ import annotations

import io
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console

from app.accounts.service import CurrentUser, authenticate
from app.accounts.tables import Account
from app.chat.service import transcript
from app.chat.tables import ChatMessage, ChatVisitor, Conversation
from app.core.tables import AuditLog, SearchOutbox
from app.customers.normalize import name_key, normalise_mobile
from app.customers.service import project_contact_moment
from app.customers.tables import Contact, Customer, Project
from app.demo import generate
from app.feedback.tables import Feedback
from app.followups.service import due_moment
from app.followups.tables import FollowUp
from app.i18n import local

pytestmark = pytest.mark.db

N = 40
NOW = datetime(2026, 6, 15, 3, 30, tzinfo=UTC)
CHINESE = re.compile(r"^[\u4e00-\u9fff]{2,}$")
HAS_CHINESE = re.compile(r"[\u4e00-\u9fff]{2,}")


async def test_counts_match_the_rows_written() -> None:
    counts = await generate(customers=N, seed=1)

    assert counts == {
        "accounts": 4,
        "customers": N,
        "contacts": await Contact.count(),
        "projects": await Project.count(),
        "follow_ups": await FollowUp.count(),
        "feedback": await Feedback.count(),
        "conversations": await Conversation.count(),
        "chat_messages": await ChatMessage.count(),
    }
    assert await Customer.count() == N
    assert await Account.count() == 4
    assert counts["follow_ups"] > N  # about six each by default


async def test_follow_ups_per_customer_sets_the_average() -> None:
    none = await generate(customers=N, followups_per_customer=0, seed=2)
    assert none["follow_ups"] == 0
    # Without follow-ups, a signed project is a customer's only contact.
    contacted = await Customer.select(Customer.id).where(Customer.last_contact_at.is_not_null())
    signed = await Project.select(Project.customer).where(Project.signed_on.is_not_null())
    assert {row["id"] for row in contacted} == {row["customer"] for row in signed}

    many = await generate(customers=N, followups_per_customer=20, seed=2)
    assert 10 * N < many["follow_ups"] < 30 * N


async def test_every_mobile_is_a_valid_mainland_number() -> None:
    await generate(customers=N, seed=3)

    mobiles = [row["mobile"] for row in await Customer.select(Customer.mobile)]
    mobiles += [row["mobile"] for row in await Contact.select(Contact.mobile)]
    filled = [mobile for mobile in mobiles if mobile]
    assert len(filled) > N / 2
    for mobile in filled:
        assert normalise_mobile(mobile) == mobile
        assert len(mobile) == 11
    assert len(set(filled)) == len(filled)


async def test_names_are_chinese_and_keyed_like_the_duplicate_check() -> None:
    await generate(customers=N, seed=4)

    customers = await Customer.select(Customer.name, Customer.name_key, Customer.province, Customer.city)
    for customer in customers:
        assert CHINESE.match(customer["name"]), customer["name"]
        assert customer["name_key"] == name_key(customer["name"])
        assert customer["province"] and customer["city"]
    for contact in await Contact.select(Contact.name):
        assert CHINESE.match(contact["name"]), contact["name"]
    # A Kunming firm: Yunnan is home ground.
    assert sum(customer["province"] == "云南省" for customer in customers) > N / 2


async def test_members_have_converted_at_and_prospects_do_not() -> None:
    await generate(customers=N, seed=5)

    rows = await Customer.select(Customer.kind, Customer.converted_at, Customer.created_at, Customer.updated_at)
    kinds = {row["kind"] for row in rows}
    assert kinds == {"prospect", "member"}
    for row in rows:
        if row["kind"] == "member":
            assert row["created_at"] <= row["converted_at"] <= row["updated_at"]
        else:
            assert row["converted_at"] is None
        assert row["updated_at"] >= row["created_at"]
    assert not await Project.exists().where(Project.customer.kind == "prospect")


async def test_contact_dates_come_from_follow_ups_and_signed_projects_as_the_app_keeps_them() -> None:
    await generate(customers=N, seed=6, now=NOW)

    follow_ups = await FollowUp.select(
        FollowUp.id, FollowUp.customer, FollowUp.happened_at, FollowUp.next_follow_up_at, FollowUp.customer.created_at
    ).order_by(FollowUp.happened_at)
    left_messages = {
        row["followup_id"]
        for row in await Conversation.select(Conversation.followup_id).where(Conversation.left_message.eq(True))
    }
    newest: dict[int, dict] = {}
    for follow_up in follow_ups:
        assert follow_up["customer.created_at"] <= follow_up["happened_at"] <= NOW
        newest[follow_up["customer"]] = follow_up
    signed: dict[int, list] = {}
    for project in await Project.select(Project.customer, Project.signed_on).where(Project.signed_on.is_not_null()):
        signed.setdefault(project["customer"], []).append(project_contact_moment(project["signed_on"]))
    customers = await Customer.select(
        Customer.id,
        Customer.last_contact_at,
        Customer.first_contact_at,
        Customer.contact_count,
        Customer.next_follow_up_at,
    )
    for customer in customers:
        latest = newest.get(customer["id"])
        moments = [row["happened_at"] for row in follow_ups if row["customer"] == customer["id"]]
        moments += signed.get(customer["id"], [])
        assert customer["last_contact_at"] == max(moments, default=None)
        assert customer["first_contact_at"] == min(moments, default=None)
        assert customer["contact_count"] == len(moments)
        assert customer["next_follow_up_at"] == (latest["next_follow_up_at"] if latest else None)
        if customer["next_follow_up_at"] and latest["id"] in left_messages:
            # A message left on the website chat falls due on the day it was left, as the chat does it.
            assert local(customer["next_follow_up_at"]).date() == local(latest["happened_at"]).date()
        elif customer["next_follow_up_at"]:
            assert customer["next_follow_up_at"] > latest["happened_at"]


async def test_project_amounts_are_whole_fen_in_a_realistic_range() -> None:
    await generate(customers=N, seed=7)

    projects = await Project.select(Project.amount_fen, Project.signed_on, Project.status, Project.name)
    assert projects
    for project in projects:
        assert isinstance(project["amount_fen"], int)
        assert 20_000 * 100 <= project["amount_fen"] <= 3_000_000 * 100
        assert (project["signed_on"] is None) == (project["status"] == "negotiating")
        assert project["name"]


async def test_value_tiers_only_on_customers_with_revenue() -> None:
    await generate(customers=N, seed=8)

    earning = {
        row["customer"]
        for row in await Project.select(Project.customer).where(Project.status.is_in(["in_progress", "completed"]))
    }
    tiers = {row["id"]: row["value_tier"] for row in await Customer.select(Customer.id, Customer.value_tier)}
    assert {customer_id for customer_id, tier in tiers.items() if tier} == earning
    assert "A" in tiers.values()
    assert not await Customer.exists().where(Customer.tier_pinned.eq(True))


async def test_demo_data_writes_no_audit_or_outbox_rows() -> None:
    await generate(customers=N, seed=9)

    assert await AuditLog.count() == 0
    assert await SearchOutbox.count() == 0


async def test_feedback_is_mostly_positive_and_handled_feedback_has_a_reply() -> None:
    await generate(customers=200, followups_per_customer=1, seed=10)

    feedback = await Feedback.select()
    assert feedback
    for item in feedback:
        assert 1 <= item["rating"] <= 5
        assert item["customer"] is not None
        if item["status"] == "handled":
            assert item["reply"] and item["handled_by"] and item["handled_at"] >= item["created_at"]
        else:
            assert not item["reply"] and item["handled_by"] is None
    assert sum(item["rating"] >= 4 for item in feedback) > len(feedback) / 2


async def test_demo_staff_share_one_password_printed_once() -> None:
    output = io.StringIO()
    await generate(customers=5, seed=11, console=Console(file=output, width=200))

    printed = output.getvalue()
    password = re.search(r"演示账号密码: (\S+?)（", printed)
    assert password, printed
    for username in ("wangfang", "liqiang", "chenjing", "zhangwei"):
        assert username in printed
        assert await authenticate(username, password.group(1)) is not None


async def test_existing_staff_are_kept_and_own_the_new_customers(people: dict[str, CurrentUser]) -> None:
    counts = await generate(customers=N, seed=12)

    # 王芳, 李强 and 张伟 exist already; only 陈静 is missing from the demo team.
    assert counts["accounts"] == 1
    assert await Account.count() == len(people) + 1
    owners = {row["owner"] for row in await Customer.select(Customer.owner)}
    assert people["wangfang"].account_id in owners
    assert people["admin"].account_id not in owners


async def test_running_again_adds_more_customers() -> None:
    first = await generate(customers=N, seed=13)
    second = await generate(customers=N, seed=14)

    assert second["accounts"] == 0
    assert await Customer.count() == 2 * N
    assert await FollowUp.count() == first["follow_ups"] + second["follow_ups"]
    ids = [row["id"] for row in await Customer.select(Customer.id)]
    assert len(set(ids)) == 2 * N


async def test_the_same_seed_gives_the_same_customers() -> None:
    columns = (Customer.name, Customer.kind, Customer.mobile, Customer.created_at, Customer.last_contact_at)

    await generate(customers=N, seed=15, now=NOW)
    first = await Customer.select(*columns).order_by(Customer.id)
    await generate(customers=N, seed=15, now=NOW)
    second = await Customer.select(*columns).order_by(Customer.id).offset(N).limit(N)

    assert first == second


# --- Website chat ------------------------------------------------------------------------------------------------

CHATTING = 250


async def _chats(seed: int) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
    """A demo with enough website customers to see every kind of conversation: the conversations, and each one's
    messages in id order."""
    await generate(customers=CHATTING, followups_per_customer=3, seed=seed, now=NOW)
    conversations = await Conversation.select(
        Conversation.all_columns(), Conversation.visitor.name.as_alias("visitor_name")
    ).order_by(Conversation.id)
    messages: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for message in await ChatMessage.select().order_by(ChatMessage.id):
        messages[message["conversation"]].append(message)
    return conversations, messages


async def test_website_customers_chatted_from_a_browser_that_recognises_them() -> None:
    conversations, _ = await _chats(seed=20)

    by_customer: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for conversation in conversations:
        by_customer[conversation["customer"]].append(conversation)
    website = await Customer.select(Customer.id).where(Customer.source_channel.label == "网站在线咨询")
    assert website
    assert all(customer["id"] in by_customer for customer in website)
    assert len(by_customer) > len(website)  # some customers of other channels came back through the website
    assert any(len(chats) == 2 for chats in by_customer.values())

    visitors = await ChatVisitor.select()
    assert len(visitors) == len(by_customer)
    assert len({visitor["token_hash"] for visitor in visitors}) == len(visitors)
    for visitor in visitors:
        assert re.fullmatch(r"[0-9a-f]{64}", visitor["token_hash"])
        chats = by_customer[visitor["customer"]]
        # The widget shows and polls the latest conversation.
        assert visitor["conversation_id"] == max(chats, key=lambda chat: chat["started_at"])["id"]
        assert visitor["created_at"] == min(chat["started_at"] for chat in chats)
        assert CHINESE.match(visitor["name"]), visitor["name"]
        # What the visitor typed finds their customer again, as the chat's duplicate check does.
        customer = await Customer.select().where(Customer.id == visitor["customer"]).first()
        mobiles = {customer["mobile"]} | {
            row["mobile"] for row in await Contact.select(Contact.mobile).where(Contact.customer == customer["id"])
        }
        assert (
            (visitor["mobile"] and visitor["mobile"] in mobiles)
            or (visitor["email"] and visitor["email"] == customer["email"])
            or (visitor["wechat"] and visitor["wechat"] == customer["wechat"])
        ), visitor


async def test_message_ids_follow_time_and_the_conversation_row_points_at_the_newest() -> None:
    conversations, messages = await _chats(seed=21)

    assert sum(map(len, messages.values())) == await ChatMessage.count()
    for conversation in conversations:
        thread = messages[conversation["id"]]
        assert thread[0]["author"] == "visitor"
        assert thread[0]["created_at"] == conversation["started_at"]
        assert [message["created_at"] for message in thread] == sorted(message["created_at"] for message in thread)
        assert conversation["last_message_id"] == thread[-1]["id"]
        assert conversation["last_message_at"] == thread[-1]["created_at"]
        said = [message for message in thread if message["author"] != "system"]
        for message in said:
            assert HAS_CHINESE.search(message["body"]), message["body"]
            assert message["staff"] == (conversation["assignee"] if message["author"] == "staff" else None)
        answers = [message for message in said if message["author"] == "staff"]
        assert conversation["first_response_at"] == (answers[0]["created_at"] if answers else None)
        if conversation["left_message"]:
            assert len(thread) == 1
        elif conversation["status"] == "closed":
            assert 3 <= len(said) <= 10
            assert [message["author"] for message in said] == ["visitor", "staff"] * (len(said) // 2) + ["visitor"] * (
                len(said) % 2
            )


async def test_every_closed_chat_is_a_follow_up_with_its_transcript() -> None:
    conversations, messages = await _chats(seed=22)

    closed = [conversation for conversation in conversations if conversation["status"] == "closed"]
    assert any(conversation["left_message"] for conversation in closed)
    assert {conversation["closed_by"] for conversation in closed} == {"staff", "visitor"}
    follow_ups = {
        row["id"]: row
        for row in await FollowUp.select(FollowUp.all_columns(), FollowUp.method.label.as_alias("method_label"))
    }
    for conversation in closed:
        assert conversation["unread"] == 0 and conversation["waiting_since"] is None
        assert conversation["closed_at"] == conversation["last_message_at"]
        follow_up = follow_ups[conversation["followup_id"]]
        assert follow_up["conversation_id"] == conversation["id"]
        assert follow_up["customer"] == conversation["customer"]
        assert follow_up["author"] == conversation["assignee"] is not None
        assert follow_up["method_label"] == "在线聊天"
        assert follow_up["happened_at"] == conversation["started_at"]
        thread = messages[conversation["id"]]
        if conversation["left_message"]:
            assert conversation["closed_by"] == "visitor" and conversation["rating"] is None
            assert follow_up["content"] == f"{conversation['visitor_name']} 通过网站在线咨询留言：\n{thread[0]['body']}"
            assert follow_up["next_follow_up_at"] == due_moment(local(conversation["started_at"]).date())
        else:
            assert thread[-1]["author"] == "system"
            assert thread[-1]["body"] == f"closed_by_{conversation['closed_by']}"
            assert follow_up["content"] == await transcript(conversation["id"])
            assert follow_up["content"].startswith("网站在线咨询记录\n")
    linked = [row for row in follow_ups.values() if row["conversation_id"] is not None]
    assert len(linked) == len(closed)


async def test_ratings_are_feedback_on_the_conversation_and_mostly_good() -> None:
    conversations, _ = await _chats(seed=23)

    feedback = {row["id"]: row for row in await Feedback.select().where(Feedback.conversation_id.is_not_null())}
    rated = [conversation for conversation in conversations if conversation["rating"] is not None]
    answered = [c for c in conversations if c["status"] == "closed" and not c["left_message"]]
    assert 0.25 * len(answered) < len(rated) < 0.55 * len(answered)
    assert len(feedback) == len(rated)
    for conversation in rated:
        item = feedback[conversation["feedback_id"]]
        assert item["conversation_id"] == conversation["id"]
        assert item["customer"] == conversation["customer"]
        assert item["rating"] == conversation["rating"]
        assert item["visitor_name"] == conversation["visitor_name"]
        assert item["visitor_contact"] and item["created_by"] is None
        assert conversation["closed_at"] <= item["created_at"] <= NOW
        assert HAS_CHINESE.search(item["content"])
        if item["status"] == "handled":
            assert item["reply"] and item["handled_by"]
    assert any(item["content"] == "访客对在线咨询打了分，未留评语。" for item in feedback.values())
    assert sum(item["rating"] >= 4 for item in feedback.values()) > len(feedback) / 2
    assert all(c["feedback_id"] is None for c in conversations if c["rating"] is None)


async def test_staff_answer_at_their_own_pace() -> None:
    conversations, _ = await _chats(seed=24)

    waits: dict[int, list[float]] = defaultdict(list)
    for conversation in conversations:
        # Long enough ago that nothing was squeezed in before the demo's `now`.
        if conversation["first_response_at"] and conversation["started_at"] < NOW - timedelta(hours=1):
            waited = (conversation["first_response_at"] - conversation["started_at"]).total_seconds()
            assert 10 <= waited <= 600
            waits[conversation["assignee"]].append(waited)
    averages = sorted(sum(seconds) / len(seconds) for seconds in waits.values())
    assert len(averages) >= 3
    assert averages[-1] > 1.5 * averages[0]


async def test_chats_come_from_pages_of_the_company_website_with_their_campaign() -> None:
    conversations, _ = await _chats(seed=25)

    customers = {row["id"]: row for row in await Customer.select()}
    first_touch = 0
    for conversation in conversations:
        assert conversation["page_url"].startswith("https://www.ynsc-survey.cn/")
        assert HAS_CHINESE.search(conversation["page_title"])
        assert conversation["language"] == "zh-CN"
        assert conversation["user_agent"].startswith("Mozilla/5.0 (")
        assert re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", conversation["ip"])
        if conversation["utm_source"]:
            first_touch += 1
            customer = customers[conversation["customer"]]
            for name in ("utm_source", "utm_medium", "utm_campaign"):
                assert conversation[name] == customer[name]
            assert "utm_source=" in conversation["page_url"]
    assert first_touch
    assert any(conversation["referrer"].startswith("https://www.baidu.com/s?wd=") for conversation in conversations)
    assert any(conversation["referrer"] == "" for conversation in conversations)


async def test_a_few_visitors_are_waiting_for_an_answer_right_now() -> None:
    conversations, messages = await _chats(seed=26)

    waiting = [conversation for conversation in conversations if conversation["status"] == "open"]
    assert 3 <= len(waiting) <= 5
    unassigned = [conversation for conversation in waiting if conversation["assignee"] is None]
    assert unassigned and len(unassigned) < len(waiting)
    for conversation in waiting:
        thread = messages[conversation["id"]]
        assert NOW - timedelta(hours=4) <= conversation["started_at"] <= thread[-1]["created_at"] <= NOW
        assert conversation["closed_at"] is None and conversation["followup_id"] is None
        unread = 0
        while unread < len(thread) and thread[-1 - unread]["author"] == "visitor":
            unread += 1
        assert conversation["unread"] == unread >= 1
        assert conversation["waiting_since"] == thread[-unread]["created_at"]
    for conversation in unassigned:
        # A new visitor: a new prospect in the pool whose needs are the first question.
        customer = await Customer.select().where(Customer.id == conversation["customer"]).first()
        assert customer["kind"] == "prospect" and customer["owner"] is None and customer["created_by"] is None
        assert customer["created_at"] == conversation["started_at"]
        assert customer["source_channel"] is not None
        assert customer["needs"] == messages[conversation["id"]][0]["body"]
        assert not await FollowUp.exists().where(FollowUp.customer == customer["id"])


async def test_even_a_tiny_demo_has_someone_waiting_in_the_chat() -> None:
    await generate(customers=5, seed=27, now=NOW)

    assert await Conversation.count().where(Conversation.status == "open") >= 2
