"""`kehu demo`: realistic Chinese demo data whose denormalised columns agree with the rows they summarise."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pytest
from rich.console import Console

from app.accounts.service import CurrentUser, authenticate
from app.accounts.tables import Account
from app.core.tables import AuditLog, SearchOutbox
from app.customers.normalize import name_key, normalise_mobile
from app.customers.tables import Contact, Customer, Project
from app.demo import generate
from app.feedback.tables import Feedback
from app.followups.tables import FollowUp

pytestmark = pytest.mark.db

N = 40
NOW = datetime(2026, 6, 15, 3, 30, tzinfo=UTC)
CHINESE = re.compile(r"^[\u4e00-\u9fff]{2,}$")


async def test_counts_match_the_rows_written() -> None:
    counts = await generate(customers=N, seed=1)

    assert counts == {
        "accounts": 4,
        "customers": N,
        "contacts": await Contact.count(),
        "projects": await Project.count(),
        "follow_ups": await FollowUp.count(),
        "feedback": await Feedback.count(),
    }
    assert await Customer.count() == N
    assert await Account.count() == 4
    assert counts["follow_ups"] > N  # about six each by default


async def test_follow_ups_per_customer_sets_the_average() -> None:
    none = await generate(customers=N, followups_per_customer=0, seed=2)
    assert none["follow_ups"] == 0
    assert await Customer.count().where(Customer.last_contact_at.is_not_null()) == 0

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


async def test_last_contact_and_next_follow_up_come_from_the_newest_follow_up() -> None:
    await generate(customers=N, seed=6, now=NOW)

    follow_ups = await FollowUp.select(
        FollowUp.customer, FollowUp.happened_at, FollowUp.next_follow_up_at, FollowUp.customer.created_at
    ).order_by(FollowUp.happened_at)
    newest: dict[int, dict] = {}
    for follow_up in follow_ups:
        assert follow_up["customer.created_at"] <= follow_up["happened_at"] <= NOW
        newest[follow_up["customer"]] = follow_up
    for customer in await Customer.select(Customer.id, Customer.last_contact_at, Customer.next_follow_up_at):
        latest = newest.get(customer["id"])
        assert customer["last_contact_at"] == (latest["happened_at"] if latest else None)
        assert customer["next_follow_up_at"] == (latest["next_follow_up_at"] if latest else None)
        if customer["next_follow_up_at"]:
            assert customer["next_follow_up_at"] > customer["last_contact_at"]


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
