"""The analysis figures, checked against a dozen customers whose numbers are worked out by hand below: channels,
budget bands, regions, the Pareto share, A/B/C tiers, RFM segments, activity, conversion per staff member and
the slipping-away list; the filters, the links, the recomputation's writes, and the ad spend entries.

The fixture (amounts in 万 yuan = 1,000,000 fen; days = days before now):

| customer | kind | channel | province/city | budget | owner | counted projects | last contact |
| c1 | member | 搜索引擎 | 云南 昆明 | 20万–50万 | 王芳 | 30 + 20 | 10 |
| c2 | member | 转介绍 | 云南 昆明 | 20万–50万 | 王芳 | 20 | 200 |
| c3 | member | 转介绍 | 云南 昆明 | 5万–20万 | 李强 | 6 + 4 | 30 |
| c4 | member | 搜索引擎 | 云南 昆明 | 5万–20万 | 李强 | 8 | 5 |
| c5 | prospect | 转介绍 | 云南 曲靖 | 5万–20万 | 王芳 | 5 (+100 cancelled) | 300 |
| c6 | member | 展会 | 云南 曲靖 | 5万以下 | 李强 | 4 (+50 deleted) | 20 |
| c7 | member | 展会 | 四川 成都 | 5万以下 | pool | 2 | 400 |
| c8 | member | 展会 | 四川 成都 | 5万以下 | pool | 1 (tier A by hand) | 60 |
| c9 | prospect | 搜索引擎 | 四川 成都 | 5万以下 | 王芳 | — (stale tier B) | 100 |
| c10 | prospect | 搜索引擎 | 四川 成都 | — | 李强 | — | never |
| c11 | prospect | 展会 | — | — | pool | — | 5 |
| c12 | member | 展会 | — | — | pool | — | never |

c1–c8 came in 400 days ago, c9–c12 ten days ago. Total revenue 100万.
"""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from litestar.exceptions import PermissionDeniedException

from app.accounts.service import CurrentUser
from app.analysis import service
from app.analysis.report import AnalysisFilters, View
from app.analysis.tables import AdSpend
from app.analysis.tiers import recompute_if_due, tier_settings
from app.chat.tables import ChatVisitor, Conversation
from app.core.tables import AuditLog, SearchOutbox
from app.customers import service as customers
from app.customers.service import FormErrors, refresh_contact_dates, refresh_revenue
from app.customers.tables import Customer, Project
from app.db import read_transaction, side_by_side
from app.feedback.tables import Feedback
from app.followups import service as followups
from app.followups.tables import FollowUp
from app.i18n import SHANGHAI
from app.options.tables import OptionItem

pytestmark = pytest.mark.db

WAN = 1_000_000  # fen in 1万 yuan


async def option_id(label: str) -> int:
    row = await OptionItem.select(OptionItem.id).where(OptionItem.label == label).first()
    assert row is not None
    return row["id"]


@dataclass
class Fixture:
    ids: dict[str, int]
    now: datetime
    people: dict[str, CurrentUser]


async def build_fixture(people: dict[str, CurrentUser]) -> Fixture:
    now = datetime.now(UTC)
    ago = lambda days: now - timedelta(days=days)  # noqa: E731
    search, referral, fair = await option_id("搜索引擎"), await option_id("转介绍"), await option_id("展会")
    low, middle, high = await option_id("5万以下"), await option_id("5万–20万"), await option_id("20万–50万")
    wang, li, zhang = (people[name].account_id for name in ("wangfang", "liqiang", "zhangwei"))
    yunnan, sichuan = ("云南省", "昆明市"), ("四川省", "成都市")
    specs: list[dict[str, Any]] = [
        # name, kind, channel, (province, city), budget, owner, last contact days, created days
        dict(n="c1", kind="member", ch=search, at=yunnan, band=high, owner=wang, last=10),
        dict(n="c2", kind="member", ch=referral, at=yunnan, band=high, owner=wang, last=200),
        dict(n="c3", kind="member", ch=referral, at=yunnan, band=middle, owner=li, last=30),
        dict(n="c4", kind="member", ch=search, at=yunnan, band=middle, owner=li, last=5),
        dict(n="c5", kind="prospect", ch=referral, at=("云南省", "曲靖市"), band=middle, owner=wang, last=300),
        dict(n="c6", kind="member", ch=fair, at=("云南省", "曲靖市"), band=low, owner=li, last=20),
        dict(n="c7", kind="member", ch=fair, at=sichuan, band=low, owner=None, last=400, tier="A"),
        dict(n="c8", kind="member", ch=fair, at=sichuan, band=low, owner=None, last=60, tier="A", pinned=True),
        dict(n="c9", kind="prospect", ch=search, at=sichuan, band=low, owner=wang, last=100, tier="B", new=True),
        dict(n="c10", kind="prospect", ch=search, at=sichuan, band=None, owner=li, last=None, new=True),
        dict(n="c11", kind="prospect", ch=fair, at=("", ""), band=None, owner=None, last=5, new=True),
        dict(n="c12", kind="member", ch=fair, at=("", ""), band=None, owner=None, last=None, new=True),
    ]
    ids: dict[str, int] = {}
    for spec in specs:
        created = ago(10) if spec.get("new") else ago(400)
        converted = None
        if spec["kind"] == "member":
            converted = ago(5) if spec.get("new") else ago(380)
        customer = Customer(
            name=f"测试客户{spec['n']}",
            name_key=spec["n"],
            kind=spec["kind"],
            origin="own",
            province=spec["at"][0],
            city=spec["at"][1],
            source_channel=spec["ch"],
            budget_band=spec["band"],
            owner=spec["owner"],
            value_tier=spec.get("tier"),
            tier_pinned=spec.get("pinned", False),
            last_contact_at=ago(spec["last"]) if spec["last"] is not None else None,
            created_at=created,
            converted_at=converted,
        )
        await customer.save()
        ids[spec["n"]] = customer.id

    def project(name: str, wan: float, status: str = "completed", signed: int | None = None, **more: Any) -> Project:
        return Project(
            customer=ids[name],
            name=f"{name} 项目",
            amount_fen=int(wan * WAN),
            status=status,
            signed_on=ago(signed).date() if signed is not None else None,
            **more,
        )

    await Project.insert(
        project("c1", 30),
        project("c1", 20, "in_progress"),
        project("c2", 20),
        project("c3", 6),
        project("c3", 4, "negotiating", signed=60),
        project("c4", 8),
        project("c5", 5),
        project("c5", 100, "cancelled"),
        project("c6", 4),
        project("c6", 50, deleted_at=ago(3)),
        project("c7", 2),
        project("c8", 1),
    )
    for customer_id in ids.values():
        # What every project write does in the app, here after the projects were inserted directly.
        await refresh_revenue(customer_id)
    follow_ups = {
        "c1": (wang, [100, 70, 40, 10]),
        "c2": (wang, [260, 240, 220, 200]),
        "c3": (li, [100, 30]),
        "c4": (li, [45, 25, 5]),
        "c5": (wang, [310, 300]),
        "c6": (li, [26, 24, 22, 20]),
        "c8": (zhang, [60]),
    }
    await FollowUp.insert(
        *(
            FollowUp(customer=ids[name], author=author, happened_at=ago(days), content="电话沟通")
            for name, (author, days_list) in follow_ups.items()
            for days in days_list
        ),
        # Deleted: counts nowhere.
        FollowUp(customer=ids["c1"], author=wang, happened_at=ago(1), content="误录", deleted_at=ago(1)),
    )
    for name in follow_ups:
        # What every follow-up write does in the app (first and last contact, number of contacts), here after
        # the follow-ups were inserted directly; the last contacts come out as in the table above.
        await refresh_contact_dates(ids[name])
    return Fixture(ids=ids, now=now, people=people)


@pytest.fixture
async def fixture(people: dict[str, CurrentUser]) -> Fixture:
    return await build_fixture(people)


def rows_of(view: View, table: str, first: str) -> dict[str, dict[str, Any]]:
    found = view.table(table)
    assert found is not None, table
    return {row.cells[first]: row.cells for row in found.rows}


def links_of(view: View, table: str, first: str) -> dict[str, str | None]:
    found = view.table(table)
    assert found is not None
    return {row.cells[first]: row.link for row in found.rows}


# -- the numbers ----------------------------------------------------------------------------------------------


async def test_recompute_ranks_tiers_by_revenue_and_keeps_a_pinned_tier(fixture: Fixture) -> None:
    result = await service.recompute_tiers()

    # Ranked: c1 50, c2 20, c3 10, c4 8, c5 5, c6 4, c7 2, c8 1 (万; total 100). Revenue before each:
    # c1 0, c2 50, c3 70 (< 80: A, it crosses the line) | c4 80, c5 88, c6 93 (< 95: B) | c7 97, c8 99: C.
    # c8 was set to A by hand and stays A; c9 has no revenue and loses its stale B.
    tiers = {
        row["name_key"]: row["value_tier"] for row in await Customer.select(Customer.name_key, Customer.value_tier)
    }
    assert tiers == {
        "c1": "A",
        "c2": "A",
        "c3": "A",
        "c4": "B",
        "c5": "B",
        "c6": "B",
        "c7": "C",
        "c8": "A",
        "c9": None,
        "c10": None,
        "c11": None,
        "c12": None,
    }
    assert (result.a, result.b, result.c, result.untiered, result.pinned) == (4, 3, 1, 4, 1)
    # Changed: c1–c6 (no tier → tier, and a segment), c7 (A → C), c8 (segment only), c9 (B → none).
    assert result.changed == 9


async def test_rfm_segments_against_the_population_means(fixture: Fixture) -> None:
    await service.recompute_tiers()

    # Population: c1–c8 (n = 8).
    # R, days since contact: 10, 200, 30, 5, 300, 20, 400, 60 → mean 1025 / 8 = 128.125; high (≤ mean): c1 c3 c4 c6 c8.
    # F, counted projects: 2, 1, 2, 1, 1, 1, 1, 1 → mean 10 / 8 = 1.25; high (≥ mean): c1 c3.
    # M, revenue (万): 50, 20, 10, 8, 5, 4, 2, 1 → mean 100 / 8 = 12.5; high: c1 c2.
    segments = {
        row["name_key"]: row["rfm_segment"] for row in await Customer.select(Customer.name_key, Customer.rfm_segment)
    }
    assert segments == {
        "c1": "important_value",  # R high, F high, M high
        "c2": "important_retain",  # R low, F low, M high
        "c3": "general_value",  # R high, F high, M low
        "c4": "general_develop",  # R high, F low, M low
        "c5": "general_retain",  # R low, F low, M low
        "c6": "general_develop",
        "c7": "general_retain",
        "c8": "general_develop",
        "c9": "",
        "c10": "",
        "c11": "",
        "c12": "",
    }
    view = await service.build_view("value", AnalysisFilters())
    sizes = {key: cells["customers"] for key, cells in rows_of(view, "segments", "segment").items()}
    assert sorted(sizes.values(), reverse=True) == [3, 2, 1, 1, 1, 0, 0, 0]


async def test_recompute_writes_audit_and_outbox_rows_only_for_changes(fixture: Fixture) -> None:
    await service.recompute_tiers()

    # Tier changes: c1–c7 and c9; segment changes: c1–c8 (those with revenue, from none). c8's tier is pinned, c9
    # has no revenue. One audit row per changed customer, by the system, with what changed.
    audits = await AuditLog.select().where(AuditLog.entity == "customer").output(load_json=True)
    changed = {row["entity_id"]: set(row["diff"]) for row in audits}
    both = {"value_tier", "rfm_segment"}
    assert changed == {
        **{fixture.ids[f"c{n}"]: both for n in range(1, 8)},
        fixture.ids["c8"]: {"rfm_segment"},
        fixture.ids["c9"]: {"value_tier"},
    }
    assert all(row["actor"] is None for row in audits)
    outbox = await SearchOutbox.select(SearchOutbox.entity, SearchOutbox.entity_id)
    assert sorted(row["entity_id"] for row in outbox) == sorted(fixture.ids[f"c{n}"] for n in range(1, 10))

    again = await service.recompute_tiers()
    assert again.changed == 0
    assert await AuditLog.count().where(AuditLog.entity == "customer") == 9
    assert await SearchOutbox.count() == 9


async def test_channels_count_conversion_revenue_and_cost(fixture: Fixture) -> None:
    search = await option_id("搜索引擎")
    fair = await option_id("展会")
    this_month = datetime.now(SHANGHAI).date().replace(day=1)
    await AdSpend.insert(
        AdSpend(channel=search, month=this_month, amount_fen=12_000_00),
        AdSpend(channel=fair, month=this_month, amount_fen=3_000_00),
    )
    view = await service.build_view("channels", AnalysisFilters())
    rows = rows_of(view, "channels", "channel")
    # 搜索引擎: c1 c4 c9 c10 → 4 customers, members c1 c4 → 2/4; revenue 50 + 8 = 58万;
    # cost ¥12,000 / 4 = ¥3,000 per customer, / 2 = ¥6,000 per member.
    assert rows["搜索引擎"] == {
        "channel": "搜索引擎",
        "customers": 4,
        "prospects": 2,
        "members": 2,
        "conversion": 0.5,
        "revenue": 58 * WAN,
        "spend": 12_000_00,
        "per_customer": 3_000_00,
        "per_member": 6_000_00,
    }
    # 转介绍: c2 c3 c5 → members c2 c3 → 2/3; revenue 20 + 10 + 5 = 35万 (c5's cancelled 100万 does not count).
    assert rows["转介绍"]["customers"] == 3
    assert rows["转介绍"]["conversion"] == pytest.approx(2 / 3)
    assert rows["转介绍"]["revenue"] == 35 * WAN
    assert rows["转介绍"]["spend"] is None
    # 展会: c6 c7 c8 c11 c12 → members 4 → 4/5; revenue 4 + 2 + 1 = 7万 (c6's deleted 50万 does not count);
    # ¥3,000 / 5 = ¥600, / 4 = ¥750.
    assert (rows["展会"]["customers"], rows["展会"]["conversion"], rows["展会"]["revenue"]) == (5, 0.8, 7 * WAN)
    assert (rows["展会"]["per_customer"], rows["展会"]["per_member"]) == (600_00, 750_00)


async def test_budget_bands_conversion_and_amount_quartiles(fixture: Fixture) -> None:
    view = await service.build_view("prices", AnalysisFilters())
    budgets = rows_of(view, "budgets", "budget")
    # 5万以下 c6–c9 (4 of 12), 5万–20万 c3–c5 (3), 20万–50万 c1 c2 (2), none c10–c12 (3).
    assert [cells["customers"] for cells in budgets.values()] == [4, 3, 2, 3]
    assert list(budgets)[:3] == ["5万以下", "5万–20万", "20万–50万"]
    assert budgets["5万以下"]["share"] == pytest.approx(4 / 12)
    conversion = rows_of(view, "budget_conversion", "budget")
    # Members: 5万以下 c6 c7 c8 → 3/4; 5万–20万 c3 c4 → 2/3; 20万–50万 c1 c2 → 2/2.
    assert conversion["5万以下"]["conversion"] == 0.75
    assert conversion["5万–20万"]["conversion"] == pytest.approx(2 / 3)
    assert conversion["20万–50万"]["conversion"] == 1.0
    amounts = rows_of(view, "amounts_by_budget", "budget")
    # 5万–20万: 4, 5, 6, 8 (万). Inclusive quartiles at positions 0.75, 1.5, 2.25 of 0..3:
    # Q1 = 4 + 0.75 × 1 = 4.75; median = 5.5; Q3 = 6 + 0.25 × 2 = 6.5; mean 23 / 4 = 5.75.
    assert amounts["5万–20万"] == {
        "budget": "5万–20万",
        "projects": 4,
        "min": 4 * WAN,
        "q1": 4_750_000,
        "median": 5_500_000,
        "q3": 6_500_000,
        "max": 8 * WAN,
        "mean": 5_750_000,
    }
    # 20万–50万: 20, 20, 30 → Q1 20, median 20, Q3 25; mean 70 / 3 = 23.333… 万 → 23,333,333 fen.
    assert (amounts["20万–50万"]["q1"], amounts["20万–50万"]["median"], amounts["20万–50万"]["q3"]) == (
        20 * WAN,
        20 * WAN,
        25 * WAN,
    )
    assert amounts["20万–50万"]["mean"] == 23_333_333


async def test_regions_per_province_and_city(fixture: Fixture) -> None:
    view = await service.build_view("regions", AnalysisFilters())
    provinces = rows_of(view, "provinces", "province")
    # 云南: c1–c6, members c1 c2 c3 c4 c6 → 5/6, revenue 97万; 四川: c7–c10, members c7 c8 → 2/4, revenue 3万.
    assert (provinces["云南省"]["customers"], provinces["云南省"]["members"], provinces["云南省"]["revenue"]) == (
        6,
        5,
        97 * WAN,
    )
    assert provinces["云南省"]["conversion"] == pytest.approx(5 / 6)
    assert (provinces["四川省"]["customers"], provinces["四川省"]["conversion"]) == (4, 0.5)
    cities = rows_of(view, "cities", "city")
    assert (cities["昆明市"]["customers"], cities["曲靖市"]["customers"], cities["成都市"]["customers"]) == (4, 2, 4)
    assert "city=%E6%98%86%E6%98%8E%E5%B8%82" in links_of(view, "cities", "city")["昆明市"]


async def test_pareto_share_and_tier_revenue(fixture: Fixture) -> None:
    await service.recompute_tiers()
    view = await service.build_view("value", AnalysisFilters())
    # 80% of 100万 is reached by c1 c2 c3 (50 + 20 + 10): 3 of the 8 customers with revenue = 37.5%.
    assert any("37.5%" in fact for fact in view.facts)
    pareto = view.table("pareto")
    assert pareto is not None
    points = {row.cells["customer_share"]: row.cells for row in pareto.rows}
    # 50% of 8 customers = the top 4: 50 + 20 + 10 + 8 = 88万 of 100万.
    assert (points[0.5]["customers"], points[0.5]["revenue_share"]) == (4, 0.88)
    assert points[1.0]["revenue_share"] == 1.0
    tiers = rows_of(view, "tiers", "tier")
    # A: c1 c2 c3 c8 → 50 + 20 + 10 + 1 = 81万 (81%), one set by hand; B: c4 c5 c6 → 17万; C: c7 → 2万.
    tier_a = next(cells for key, cells in tiers.items() if "A" in key)
    assert (tier_a["customers"], tier_a["revenue"], tier_a["revenue_share"], tier_a["pinned"]) == (4, 81 * WAN, 0.81, 1)
    assert sorted(cells["revenue"] for cells in tiers.values()) == [0, 2 * WAN, 17 * WAN, 81 * WAN]


async def test_activity_per_tier_and_owner_and_the_slipping_list(fixture: Fixture) -> None:
    await service.recompute_tiers()
    view = await service.build_view("activity", AnalysisFilters())
    # Active (contact within 90 days): c1 c3 c4 c6 c8 c11. Per tier: A c1 c2 c3 c8 → 3 active, c2 inactive;
    # B c4 c5 c6 → 2 / 1; C c7 → 0 / 1; no tier c9–c12 → c11 active, 3 inactive.
    tiers = [(row.cells["active"], row.cells["inactive"]) for row in view.table("activity_by_tier").rows]
    assert tiers == [(3, 1), (2, 1), (0, 1), (1, 3)]
    owners = rows_of(view, "activity_by_owner", "owner")
    # 王芳: c1 c2 c5 c9 → active c1 only; 李强: c3 c4 c6 c10 → 3 active; pool: c7 c8 c11 c12 → c8 c11.
    assert (owners["王芳"]["active"], owners["王芳"]["inactive"]) == (1, 3)
    assert (owners["李强"]["active"], owners["李强"]["inactive"]) == (3, 1)
    pool = next(cells for key, cells in owners.items() if key not in ("王芳", "李强"))
    assert (pool["active"], pool["inactive"]) == (2, 2)
    assert f"owner={fixture.people['wangfang'].account_id}" in (
        links_of(view, "activity_by_owner", "owner")["王芳"] or ""
    )
    # Tier A/B with at least 3 contacts (follow-ups and signed projects):
    # c1 100 70 40 10 → usual (100 − 10) / 3 = 30, 10 days since: no.
    # c2 260 240 220 200 → usual 20, 200 days since: slipping.
    # c3 100, signed ~60, 30 → usual 35, 30 since: no.   c4 45 25 5 → usual 20, 5 since: no.
    # c5 two contacts: left out.   c6 26 24 22 20 → usual 2, 20 since: slipping.   c8 one contact: left out.
    slipping = view.table("slipping")
    assert [row.cells["name"] for row in slipping.rows] == ["测试客户c2", "测试客户c6"]  # most revenue first
    assert slipping.rows[0].link == f"/customers/{fixture.ids['c2']}"
    assert (slipping.rows[0].cells["usual"], slipping.rows[0].cells["since"], slipping.rows[0].cells["contacts"]) == (
        20,
        200,
        4,
    )


async def test_every_follow_up_and_project_write_keeps_the_contacts_the_slipping_list_reads(
    people: dict[str, CurrentUser],
) -> None:
    wang = people["wangfang"]
    customer = Customer(name="昆明市测绘院", name_key="kunmingshicehuiyuan", kind="member", owner=wang.account_id)
    await customer.save()

    async def contacts() -> tuple[datetime | None, datetime | None, int]:
        row = (
            await Customer.select(Customer.first_contact_at, Customer.last_contact_at, Customer.contact_count)
            .where(Customer.id == customer.id)
            .first()
        )
        assert row is not None
        return row["first_contact_at"], row["last_contact_at"], row["contact_count"]

    signed_on = date(2025, 12, 20)
    project_id = await customers.add_project(
        wang, customer.id, {"name": "滇池东岸1:500地形测量", "amount": "36万", "signed_on": signed_on.isoformat()}
    )
    first_call = await followups.add_followup(
        wang, customer.id, {"content": "电话沟通报价。", "happened_at": "2026-01-05T10:00"}
    )
    await followups.add_followup(wang, customer.id, {"content": "上门拜访。", "happened_at": "2026-02-05T10:00"})
    first, last, count = await contacts()
    visit = datetime(2026, 2, 5, 10, tzinfo=SHANGHAI)
    assert (first, last, count) == (customers.project_contact_moment(signed_on), visit, 3)

    await followups.delete_followup(wang, customer.id, first_call)
    assert (await contacts())[2] == 2
    await customers.update_project(wang, customer.id, project_id, {"name": "滇池东岸1:500地形测量", "amount": "36万"})
    assert await contacts() == (visit, visit, 1)  # no signing day any more: the visit is the only contact
    await customers.delete_project(wang, customer.id, project_id)
    assert await contacts() == (visit, visit, 1)


async def test_follow_ups_per_week_follow_every_write_and_leave_out_deleted_customers(
    people: dict[str, CurrentUser],
) -> None:
    wang, zhang = people["wangfang"], people["zhangwei"]
    kept = Customer(name="昆明市规划局", name_key="kunmingshiguihuaju", owner=wang.account_id)
    dropped = Customer(name="玉溪市自然资源局", name_key="yuxishiziranziyuanju", owner=wang.account_id)
    await kept.save()
    await dropped.save()

    async def follow_ups_of_wang() -> int:
        # Unfiltered the counts come from the tally; filtered by owner from the follow-ups themselves.
        counts = []
        for filters in (AnalysisFilters(), AnalysisFilters(owner=str(wang.account_id))):
            view = await service.build_view("conversion", filters)
            counts.append(rows_of(view, "staff", "owner")["王芳"]["follow_ups"])
        assert counts[0] == counts[1]
        return counts[0]

    now = datetime.now(SHANGHAI).strftime("%Y-%m-%dT%H:%M")
    call = await followups.add_followup(wang, kept.id, {"content": "电话沟通规划项目。", "happened_at": now})
    slip = await followups.add_followup(wang, kept.id, {"content": "误录。", "happened_at": now})
    await followups.add_followup(wang, dropped.id, {"content": "电话沟通测绘需求。", "happened_at": now})
    assert await follow_ups_of_wang() == 3
    await followups.delete_followup(wang, kept.id, slip)
    assert await follow_ups_of_wang() == 2
    await customers.soft_delete(zhang, dropped.id)
    assert await follow_ups_of_wang() == 1
    long_ago = (datetime.now(SHANGHAI) - timedelta(days=200)).strftime("%Y-%m-%dT%H:%M")
    await followups.update_followup(wang, kept.id, call, {"content": "电话沟通规划项目。", "happened_at": long_ago})
    assert await follow_ups_of_wang() == 0


async def test_reads_run_side_by_side_see_the_one_snapshot_of_the_page(people: dict[str, CurrentUser]) -> None:
    async def live_customers() -> int:
        return await Customer.count().where(Customer.deleted_at.is_null())

    async def someone_adds_a_customer() -> None:
        await Customer(name="曲靖市水利局", name_key="qujingshishuiliju").save()

    before = await live_customers()
    async with read_transaction():
        assert await live_customers() == before
        # Committed by another request while the page is being read: in a context of its own, outside the page's
        # transaction.
        await asyncio.create_task(someone_adds_a_customer(), context=contextvars.Context())
        counts = await side_by_side(live_customers, live_customers, live_customers)
    assert counts == [before, before, before]
    assert await live_customers() == before + 1


async def test_conversion_per_staff_member_and_per_month(fixture: Fixture) -> None:
    view = await service.build_view("conversion", AnalysisFilters())
    staff = rows_of(view, "staff", "owner")
    # Follow-ups in the last 12 weeks (this week and the 11 before: at least 77 days back, less than 84):
    # 王芳 owns c1 c2 c5 c9 (members c1 c2: 2/4) and wrote c1's 70, 40, 10 (the deleted one not) = 3;
    # 李强 owns c3 c4 c6 c10 (3/4) and wrote c3's 30, c4's 45 25 5, c6's four = 8; 张伟 owns none and wrote 1.
    assert (staff["王芳"]["customers"], staff["王芳"]["conversion"], staff["王芳"]["follow_ups"]) == (4, 0.5, 3)
    assert (staff["李强"]["customers"], staff["李强"]["conversion"], staff["李强"]["follow_ups"]) == (4, 0.75, 8)
    assert (staff["张伟"]["customers"], staff["张伟"]["follow_ups"]) == (0, 1)
    weekly = view.table("weekly_follow_ups")
    li = f"staff_{fixture.people['liqiang'].account_id}"
    # Weeks start on Monday, Beijing time; 李强's only follow-up within 11 days of the one 5 days ago is that one.
    five_days_ago = (fixture.now - timedelta(days=5)).astimezone(SHANGHAI).date()
    that_week = {row.cells["week"]: row.cells for row in weekly.rows}[
        five_days_ago - timedelta(five_days_ago.weekday())
    ]
    assert that_week[li] == 1
    assert all(row.cells["week"].weekday() == 0 for row in weekly.rows)
    assert sum(row.cells[li] for row in weekly.rows) == staff["李强"]["follow_ups"]
    months = rows_of(view, "months", "month")
    # c9–c12 came in 10 days ago; c12 became a member 5 days ago. The others are older than 12 months.
    arrived = (fixture.now - timedelta(days=10)).astimezone(SHANGHAI).strftime("%Y-%m")
    converted = (fixture.now - timedelta(days=5)).astimezone(SHANGHAI).strftime("%Y-%m")
    assert months[arrived]["customers"] == 4
    assert months[arrived]["conversion"] == 0.25
    assert months[converted]["conversions"] == 1
    assert sum(cells["customers"] for cells in months.values()) == 4
    assert len(months) == 12
    by_channel = view.table("channel_months")
    # Only 搜索引擎 (c9, c10: no member) and 展会 (c11, c12: one member) brought customers within the 12 months.
    assert [column.label for column in by_channel.columns[1:]] == ["搜索引擎", "展会"]
    cohort = {row.cells["month"]: row.cells for row in by_channel.rows}[arrived]
    search, fair = (column.key for column in by_channel.columns[1:])
    assert (cohort[search], cohort[fair]) == (0.0, 0.5)
    assert all(row.cells[search] is None for row in by_channel.rows if row.cells["month"] != arrived)


async def test_chat_and_feedback_count_visitors_but_never_a_deleted_customer(fixture: Fixture) -> None:
    """Feedback and chats without a customer (a visitor's) count until a customer filter is set; a deleted
    customer's never. 王芳 answers c1's chat in 60 s (rated 5) and a visitor's in 120 s; 李强 answers c6's in
    30 s (rated 3); a chat of c5, then deleted, and a message left out of hours do not count."""
    now, ids, people = fixture.now, fixture.ids, fixture.people
    wang, li = people["wangfang"].account_id, people["liqiang"].account_id
    started = now - timedelta(days=3)
    chats = [
        ("c1", wang, 60, 5, False),
        (None, wang, 120, None, False),
        ("c6", li, 30, 3, False),
        ("c5", li, 10, 1, False),
        ("c1", wang, None, None, True),
    ]
    for number, (customer, assignee, wait, rating, left) in enumerate(chats):
        visitor = ChatVisitor(token_hash=f"{number:064d}", name=f"访客{number}")
        await visitor.save()
        await Conversation(
            visitor=visitor.id,
            customer=ids[customer] if customer else None,
            assignee=assignee,
            left_message=left,
            started_at=started,
            first_response_at=started + timedelta(seconds=wait) if wait is not None else None,
            rating=rating,
        ).save()
    for customer, rating in [("c1", 5), ("c3", 4), (None, 2), ("c5", 1), ("c6", None)]:
        await Feedback(
            customer=ids[customer] if customer else None, rating=rating, content="评价", created_at=started
        ).save()
    await Customer.update({Customer.deleted_at: now}).where(Customer.id == ids["c5"])

    view = await service.build_view("conversion", AnalysisFilters())
    chat = rows_of(view, "chat", "staff")
    assert (chat["王芳"]["chats"], chat["王芳"]["median_wait"], chat["王芳"]["ratings"]) == (2, 90, 1)
    assert (chat["李强"]["chats"], chat["李强"]["mean_wait"], chat["李强"]["rating"]) == (1, 30, 3.0)
    month = started.astimezone(SHANGHAI).strftime("%Y-%m")
    feedback = rows_of(view, "feedback", "month")[month]
    assert (feedback["ratings"], feedback["rating"]) == (3, (5 + 4 + 2) / 3)

    # 王芳's customers only: the visitor's chat and feedback drop out with the filter.
    mine = await service.build_view("conversion", AnalysisFilters(owner=str(wang)))
    assert rows_of(mine, "chat", "staff")["王芳"]["chats"] == 1
    assert rows_of(mine, "feedback", "month")[month]["ratings"] == 1


# -- filters and links ----------------------------------------------------------------------------------------


async def test_filters_narrow_the_numbers(fixture: Fixture) -> None:
    wang = fixture.people["wangfang"].account_id
    view = await service.build_view("channels", AnalysisFilters(owner=str(wang)))
    rows = rows_of(view, "channels", "channel")
    # 王芳's: c1 c9 (搜索引擎), c2 c5 (转介绍).
    assert (rows["搜索引擎"]["customers"], rows["转介绍"]["customers"]) == (2, 2)
    assert "展会" not in rows

    recent = AnalysisFilters(start=(fixture.now - timedelta(days=30)).astimezone(SHANGHAI).date())
    overview = await service.build_view("overview", recent)
    # Came in within 30 days: c9–c12, of whom c12 is a member.
    assert any("4" in fact and "1" in fact for fact in overview.facts[:1])
    regions = await service.build_view("regions", AnalysisFilters(province="云南省", channel=await option_id("转介绍")))
    assert {key: cells["customers"] for key, cells in rows_of(regions, "provinces", "province").items()} == {
        "云南省": 3
    }
    pool = await service.build_view("activity", AnalysisFilters(owner="pool", origin="external"))
    assert all(row.cells["customers"] == 0 for row in pool.table("activity_by_tier").rows)


async def test_links_carry_the_filters_and_the_rows_own(fixture: Fixture) -> None:
    search = await option_id("搜索引擎")
    filters = AnalysisFilters(start=date(2024, 1, 1), end=date(2030, 12, 31), province="云南省", origin="own")
    view = await service.build_view("channels", filters)
    link = links_of(view, "channels", "channel")["搜索引擎"]
    assert link is not None and link.startswith("/customers?")
    for part in ("created_from=2024-01-01", "created_to=2030-12-31", "origin=own", f"channel={search}"):
        assert part in link
    assert "province=%E4%BA%91%E5%8D%97%E7%9C%81" in link
    await service.recompute_tiers()
    value = await service.build_view("value", filters)
    assert all("kind=member" in row.link for row in value.table("segments").rows)
    assert any("tier=A" in (row.link or "") for row in value.table("tiers").rows)


async def test_every_view_builds_and_unknown_views_are_key_errors(fixture: Fixture) -> None:
    for key in service.VIEWS:
        view = await service.build_view(key, AnalysisFilters())
        assert view.key == key and view.tables
    with pytest.raises(KeyError):
        await service.build_view("nope", AnalysisFilters())


# -- writes -------------------------------------------------------------------------------------------------


async def test_ad_spend_is_one_entry_per_channel_and_month(people: dict[str, CurrentUser]) -> None:
    zhang = people["zhangwei"]
    search = await option_id("搜索引擎")
    await service.save_ad_spend(zhang, {"month": "2026-03", "channel": str(search), "amount": "1.2万"})
    await service.save_ad_spend(zhang, {"month": "2026-03", "channel": str(search), "amount": "¥3,500"})
    entries = await service.ad_spend_entries(AnalysisFilters())
    assert [(entry["month"], entry["channel"], entry["amount_fen"]) for entry in entries] == [
        (date(2026, 3, 1), "搜索引擎", 3_500_00)
    ]
    assert await AuditLog.count().where(AuditLog.entity == "ad_spend") == 2
    assert await service.ad_spend_entries(AnalysisFilters(start=date(2026, 4, 1))) == []
    await service.delete_ad_spend(zhang, entries[0]["id"])
    assert await AdSpend.count() == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"month": "2026-13", "amount": "100"}, "month"),
        ({"month": "March", "amount": "100"}, "month"),
        ({"month": "2026-03", "channel": "999999", "amount": "100"}, "channel"),
        ({"month": "2026-03", "amount": "-100"}, "amount"),
        ({"month": "2026-03", "amount": "很多"}, "amount"),
        ({"month": "2026-03", "amount": ""}, "amount"),
    ],
)
async def test_ad_spend_rejects_bad_input(people: dict[str, CurrentUser], data: dict[str, str], field: str) -> None:
    form = {"channel": str(await option_id("搜索引擎")), **data}
    with pytest.raises(FormErrors) as raised:
        await service.save_ad_spend(people["zhangwei"], form)
    assert field in raised.value.errors
    assert await AdSpend.count() == 0


async def test_a_channel_of_another_list_is_no_channel(people: dict[str, CurrentUser]) -> None:
    with pytest.raises(FormErrors) as raised:
        await service.save_ad_spend(
            people["admin"], {"month": "2026-03", "channel": str(await option_id("矿业")), "amount": "100"}
        )
    assert set(raised.value.errors) == {"channel"}


async def test_staff_cannot_write(people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    search = await option_id("搜索引擎")
    with pytest.raises(PermissionDeniedException):
        await service.save_ad_spend(wang, {"month": "2026-03", "channel": str(search), "amount": "100"})
    with pytest.raises(PermissionDeniedException):
        await service.save_tier_settings(wang, {"a_share": "70", "b_share": "20"})
    with pytest.raises(PermissionDeniedException):
        await service.request_recompute(wang)
    with pytest.raises(PermissionDeniedException):
        await service.delete_ad_spend(wang, 1)


async def test_tier_settings_are_validated_and_change_the_ranking(fixture: Fixture) -> None:
    zhang = fixture.people["zhangwei"]
    with pytest.raises(FormErrors) as raised:
        await service.save_tier_settings(zhang, {"a_share": "90", "b_share": "20"})
    assert set(raised.value.errors) == {"b_share"}
    with pytest.raises(FormErrors) as raised:
        await service.save_tier_settings(zhang, {"a_share": "abc", "b_share": "5"})
    assert set(raised.value.errors) == {"a_share"}

    await service.save_tier_settings(zhang, {"a_share": "50", "b_share": "30"})
    settings = await tier_settings()
    assert (settings.a_share, settings.b_share, settings.pending) == (50, 30, True)
    # The worker picks the request up. With 50/30: c1 (0 before) A; c2 (50) B; c3 (70) B; c4 (80) C …
    result = await recompute_if_due()
    assert result is not None
    tiers = {
        row["name_key"]: row["value_tier"] for row in await Customer.select(Customer.name_key, Customer.value_tier)
    }
    assert (tiers["c1"], tiers["c2"], tiers["c3"], tiers["c4"], tiers["c8"]) == ("A", "B", "B", "C", "A")
    assert not (await tier_settings()).pending
    # Nothing asked and the nightly run done: nothing is due.
    assert await recompute_if_due() is None

    await service.request_recompute(zhang)
    assert (await tier_settings()).pending
    assert await recompute_if_due() is not None


async def test_filter_choices(fixture: Fixture) -> None:
    choices = await service.filter_choices()
    assert choices.provinces == ["四川省", "云南省"]  # in the list order of PROVINCES
    assert ("搜索引擎" in dict(choices.channels).values()) and len(choices.owners) == 4
