"""Follow-ups (跟进记录) as staff use them: the timeline on the customer page, adding, editing and deleting in
place, the customer's last contact and next follow-up kept in step, and "my follow-ups" by due date."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient

from app.accounts.service import CurrentUser
from app.core.tables import AuditLog, SearchOutbox
from app.customers import service as customers
from app.customers.service import FormErrors, NotVisible
from app.customers.tables import Customer
from app.followups import service
from app.followups.tables import FollowUp
from app.i18n import SHANGHAI, _, local
from app.options.tables import OptionItem, OptionKind
from tests.conftest import text_of

pytestmark = pytest.mark.db


def htmx(target: str) -> dict[str, str]:
    return {"HX-Request": "true", "HX-Target": target}


async def make_customer(owner: CurrentUser, **fields: str) -> int:
    data = {
        "name": "昆明华信勘测设计有限公司",
        "origin": "own",
        "mobile": "138 8712 3456",
        "province": "云南省",
        "city": "昆明市",
        **fields,
    }
    return await customers.create_customer(owner, data)


async def to_pool(customer_id: int) -> None:
    await Customer.update({Customer.owner: None}).where(Customer.id == customer_id)


async def method_id(label: str) -> str:
    row = (
        await OptionItem.select(OptionItem.id)
        .where(OptionItem.kind == OptionKind.followup_method.value, OptionItem.label == label)
        .first()
    )
    return str(row["id"])


def shanghai(text: str) -> datetime:
    """'2026-03-15 14:30' in Asia/Shanghai, as the UTC moment the database stores."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).astimezone(UTC)


def form_time(moment: datetime) -> str:
    return local(moment).strftime("%Y-%m-%dT%H:%M")


async def customer_dates(customer_id: int) -> dict:
    return (
        await Customer.select(Customer.last_contact_at, Customer.next_follow_up_at)
        .where(Customer.id == customer_id)
        .first()
    )


# -- adding -------------------------------------------------------------------------------------------------


async def test_adding_a_followup_updates_the_customers_dates_and_shows_newest_first(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    customer_id = await make_customer(wang)
    contact_id = await customers.add_contact(wang, customer_id, {"name": "陈建国", "title": "总工程师"})
    yesterday = datetime.now(UTC) - timedelta(days=1)
    next_week = (local(yesterday) + timedelta(days=8)).date()

    response = await staff.post(
        f"/customers/{customer_id}/followups",
        data={
            "method": await method_id("电话"),
            "contact": str(contact_id),
            "happened_at": form_time(yesterday),
            "content": "电话沟通地形测绘项目范围，对方希望先看报价。",
            "outcome": "同意下周上门介绍方案",
            "next_follow_up_at": next_week.isoformat(),
        },
        headers=htmx("followups"),
    )
    assert response.status_code == 200, response.text
    assert "<html" not in response.text
    assert 'id="followups"' in response.text
    text = text_of(response.text)
    assert "电话沟通地形测绘项目范围" in text and "陈建国" in text and "王芳" in text and "电话" in text
    assert 'class="timeline-next"' in response.text and next_week.isoformat() in text

    dates = await customer_dates(customer_id)
    assert dates["next_follow_up_at"] == service.due_moment(next_week)
    assert local(dates["next_follow_up_at"]).hour == 9
    assert abs(dates["last_contact_at"] - yesterday) < timedelta(minutes=1)

    # A newer follow-up without a next date settles the plan; it appears above the older one.
    response = await staff.post(
        f"/customers/{customer_id}/followups",
        data={"method": await method_id("拜访"), "content": "上门拜访，已签意向书。"},
        headers=htmx("followups"),
    )
    assert response.status_code == 200
    text = text_of(response.text)
    assert text.index("上门拜访，已签意向书。") < text.index("电话沟通地形测绘项目范围")
    dates = await customer_dates(customer_id)
    assert dates["next_follow_up_at"] is None
    assert datetime.now(UTC) - dates["last_contact_at"] < timedelta(minutes=1)

    rows = await service.timeline(wang, customer_id)
    assert [row["content"] for row in rows] == [
        "上门拜访，已签意向书。",
        "电话沟通地形测绘项目范围，对方希望先看报价。",
    ]
    assert rows[1]["method_label"] == "电话" and rows[1]["contact_name"] == "陈建国"
    assert rows[1]["author_name"] == "王芳"

    audit = (
        await AuditLog.select()
        .output(load_json=True)
        .where(AuditLog.entity == "follow_up", AuditLog.action == "create")
        .order_by(AuditLog.id)
    )
    assert len(audit) == 2 and {row["customer_id"] for row in audit} == {customer_id}
    assert audit[0]["diff"]["content"][1].startswith("电话沟通")
    assert await SearchOutbox.exists().where(SearchOutbox.entity == "customer", SearchOutbox.entity_id == customer_id)


async def test_a_plain_form_post_redirects_to_the_customer_page(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    customer_id = await make_customer(people["wangfang"])
    response = await staff.post(
        f"/customers/{customer_id}/followups",
        data={"content": "微信沟通，发送了公司资质材料。", "_csrf_token": staff.headers["x-csrftoken"]},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/customers/{customer_id}#followups"


async def test_a_later_signed_project_stays_the_last_contact(people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    customer_id = await make_customer(wang)
    signed_on = datetime.now(UTC).date()
    await customers.add_project(
        wang, customer_id, {"name": "滇池东岸1:500地形测量", "amount": "36万", "signed_on": signed_on.isoformat()}
    )
    await service.add_followup(wang, customer_id, {"content": "回访项目进展。", "happened_at": "2026-01-05T10:00"})
    dates = await customer_dates(customer_id)
    assert dates["last_contact_at"] == customers.project_contact_moment(signed_on)


async def test_followups_saved_at_the_same_moment_leave_the_customer_dates_right(
    people: dict[str, CurrentUser],
) -> None:
    wang = people["wangfang"]
    customer_id = await make_customer(wang)
    days = range(1, 9)
    await asyncio.gather(
        *(
            service.add_followup(
                wang,
                customer_id,
                {
                    "content": f"第{day}次电话回访。",
                    "happened_at": f"2026-03-{day:02d}T10:00",
                    "next_follow_up_at": f"2026-04-{day:02d}",
                },
            )
            for day in days
        )
    )
    assert await customer_dates(customer_id) == {
        "last_contact_at": shanghai("2026-03-08 10:00"),
        "next_follow_up_at": service.due_moment(date(2026, 4, 8)),
    }


async def test_an_empty_time_means_now_and_the_default_is_shown_in_shanghai_time(
    people: dict[str, CurrentUser],
) -> None:
    wang = people["wangfang"]
    customer_id = await make_customer(wang)
    followup_id = await service.add_followup(wang, customer_id, {"content": "电话回访。"})
    row = await service.get_followup(wang, customer_id, followup_id)
    assert datetime.now(UTC) - row["happened_at"] < timedelta(minutes=1)
    assert service.form_values(row)["happened_at"] == local(row["happened_at"]).strftime("%Y-%m-%dT%H:%M")


# -- validation ---------------------------------------------------------------------------------------------


async def test_validation_errors_answer_422_with_the_input_kept_and_a_message_beside_each_field(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    customer_id = await make_customer(people["wangfang"])
    in_three_days = local(datetime.now(UTC) + timedelta(days=3))
    response = await staff.post(
        f"/customers/{customer_id}/followups",
        data={
            "content": "   ",
            "outcome": "客户要求补充无人机航测报价",
            "happened_at": in_three_days.strftime("%Y-%m-%dT%H:%M"),
            "method": "999999",
            "next_follow_up_at": "明天",
        },
        headers=htmx("followups"),
    )
    assert response.status_code == 422
    html = response.text
    assert "客户要求补充无人机航测报价" in html
    assert in_three_days.strftime("%Y-%m-%dT%H:%M") in html
    for field in ("content", "happened_at", "method", "next_follow_up_at"):
        assert re.search(rf'id="followup-new-{field}"[^>]*aria-invalid="true"', html), field
        assert f'id="followup-new-{field}-error"' in html, field
    assert _("This field is required.") in html
    assert await FollowUp.count() == 0


async def test_rules_for_contact_and_next_date(people: dict[str, CurrentUser]) -> None:
    wang, li = people["wangfang"], people["liqiang"]
    customer_id = await make_customer(wang)
    other_id = await make_customer(li, name="曲靖宏达矿业有限公司", mobile="139 0874 5566")
    other_contact = await customers.add_contact(li, other_id, {"name": "赵磊"})
    with pytest.raises(FormErrors) as caught:
        await service.add_followup(
            wang,
            customer_id,
            {
                "content": "现场踏勘。",
                "contact": str(other_contact),
                "happened_at": "2026-03-15T14:30",
                "next_follow_up_at": "2026-03-14",
            },
        )
    assert set(caught.value.errors) == {"contact", "next_follow_up_at"}

    # The same day is fine: "call back this afternoon".
    await service.add_followup(
        wang,
        customer_id,
        {"content": "现场踏勘。", "happened_at": "2026-03-15T08:30", "next_follow_up_at": "2026-03-15"},
    )
    with pytest.raises(FormErrors) as caught:
        await service.add_followup(wang, customer_id, {"content": "长" * 5001, "happened_at": "2026-02-30T10:00"})
    assert set(caught.value.errors) == {"content", "happened_at"}


# -- scope and permissions ----------------------------------------------------------------------------------


async def test_staff_cannot_add_to_another_staffs_customer(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    customer_id = await make_customer(people["liqiang"], name="玉溪市自然资源局")
    response = await staff.post(
        f"/customers/{customer_id}/followups", data={"content": "电话沟通。"}, headers=htmx("followups")
    )
    assert response.status_code == 404
    assert (await staff.get(f"/customers/{customer_id}/followups")).status_code == 404
    with pytest.raises(NotVisible):
        await service.timeline(people["wangfang"], customer_id)
    assert await FollowUp.count() == 0


async def test_staff_cannot_edit_or_delete_a_colleagues_followup_but_a_supervisor_can(
    staff: AsyncTestClient, supervisor: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    customer_id = await make_customer(people["liqiang"], name="大理苍山旅游开发有限公司")
    await to_pool(customer_id)
    followup_id = await service.add_followup(people["liqiang"], customer_id, {"content": "介绍了测绘资质。"})
    url = f"/customers/{customer_id}/followups/{followup_id}"

    edited = {"content": "王芳改的内容"}
    assert (await staff.put(url, data=edited, headers=htmx(f"followup-{followup_id}"))).status_code == 403
    assert (await staff.post(url, data=edited)).status_code == 403
    assert (await staff.get(url + "/edit", headers=htmx(f"followup-{followup_id}"))).status_code == 403
    assert (await staff.post(url + "/delete", headers=htmx("followups"))).status_code == 403
    shown = await staff.get(url, headers=htmx(f"followup-{followup_id}"))
    assert shown.status_code == 200 and "介绍了测绘资质。" in shown.text and "/edit" not in shown.text

    response = await supervisor.put(
        url, data={"content": "介绍了测绘资质和过往案例。"}, headers=htmx(f"followup-{followup_id}")
    )
    assert response.status_code == 200
    assert "介绍了测绘资质和过往案例。" in response.text
    row = await FollowUp.select(FollowUp.content, FollowUp.author).where(FollowUp.id == followup_id).first()
    assert row == {"content": "介绍了测绘资质和过往案例。", "author": people["liqiang"].account_id}


async def test_malformed_or_foreign_ids_answer_4xx(staff: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    customer_id = await make_customer(wang)
    other_id = await make_customer(wang, name="昆明滇池投资有限责任公司", mobile="137 0000 1111")
    followup_id = await service.add_followup(wang, customer_id, {"content": "电话沟通。"})
    huge = "99999999999999999999"
    for url in (
        f"/customers/{other_id}/followups/{followup_id}/edit",
        f"/customers/{customer_id}/followups/abc",
    ):
        assert (await staff.get(url)).status_code == 404, url
    # Ids no row can have are refused as bad requests before any query runs.
    for url in (
        f"/customers/{huge}/followups",
        f"/customers/{customer_id}/followups/{huge}",
        f"/customers/{customer_id}/followups/{huge}/edit",
        "/customers/-1/followups",
    ):
        assert (await staff.get(url)).status_code == 400, url
    assert (await staff.post(f"/customers/{huge}/followups", data={"content": "x"})).status_code == 400
    assert (await staff.post(f"/customers/{customer_id}/followups/{huge}/delete")).status_code == 400
    assert (await staff.get(f"/followups/mine?owner={huge}")).status_code == 200


# -- editing in place ---------------------------------------------------------------------------------------


async def test_click_to_edit_shows_the_form_saves_and_cancels(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    customer_id = await make_customer(wang)
    followup_id = await service.add_followup(
        wang,
        customer_id,
        {"content": "电话沟通报价。", "happened_at": "2026-03-10T15:20", "next_follow_up_at": "2026-03-20"},
    )
    url = f"/customers/{customer_id}/followups/{followup_id}"
    target = htmx(f"followup-{followup_id}")

    form = await staff.get(url + "/edit", headers=target)
    assert form.status_code == 200 and "<html" not in form.text
    assert 'value="2026-03-10T15:20"' in form.text and 'value="2026-03-20"' in form.text
    assert f'hx-put="{url}"' in form.text

    unchanged = await staff.put(
        url,
        data={"content": "电话沟通报价。", "happened_at": "2026-03-10T15:20", "next_follow_up_at": "2026-03-20"},
        headers=target,
    )
    assert unchanged.status_code == 200
    assert not await AuditLog.exists().where(AuditLog.entity == "follow_up", AuditLog.action == "update")

    bad = await staff.put(
        url,
        data={
            "content": "电话沟通报价，客户嫌贵。",
            "happened_at": "2026-03-10T15:20",
            "next_follow_up_at": "2026-03-01",
        },
        headers=target,
    )
    assert bad.status_code == 422
    assert "电话沟通报价，客户嫌贵。" in bad.text and f'id="followup-{followup_id}-next_follow_up_at-error"' in bad.text

    saved = await staff.put(
        url,
        data={"content": "电话沟通报价，客户嫌贵。", "happened_at": "2026-03-10T15:20", "next_follow_up_at": ""},
        headers=target,
    )
    assert saved.status_code == 200
    assert f'<li class="timeline-item" id="followup-{followup_id}"' in saved.text
    assert "电话沟通报价，客户嫌贵。" in saved.text
    assert (await customer_dates(customer_id))["next_follow_up_at"] is None
    update = (
        await AuditLog.select()
        .output(load_json=True)
        .where(AuditLog.entity == "follow_up", AuditLog.action == "update")
        .first()
    )
    assert set(update["diff"]) == {"content", "next_follow_up_at"}

    cancel = await staff.get(url, headers=target)
    assert (
        cancel.status_code == 200
        and "电话沟通报价，客户嫌贵。" in cancel.text
        and '<form class="stack"' not in cancel.text
    )

    page = await staff.get(url + "/edit")
    assert page.status_code == 200 and "<html" in page.text
    plain = await staff.post(url, data={"content": "无脚本保存"}, follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == f"/customers/{customer_id}#followup-{followup_id}"


async def test_deleting_a_followup_hides_it_and_recomputes_the_customers_dates(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    customer_id = await make_customer(wang)
    await service.add_followup(
        wang,
        customer_id,
        {"content": "第一次电话。", "happened_at": "2026-03-01T10:00", "next_follow_up_at": "2026-03-08"},
    )
    latest = await service.add_followup(
        wang, customer_id, {"content": "第二次电话。", "happened_at": "2026-03-08T10:00"}
    )

    response = await staff.post(f"/customers/{customer_id}/followups/{latest}/delete", headers=htmx("followups"))
    assert response.status_code == 200
    assert "第二次电话。" not in response.text and "第一次电话。" in response.text
    assert 'hx-confirm="' in response.text
    dates = await customer_dates(customer_id)
    assert dates == {
        "last_contact_at": shanghai("2026-03-01 10:00"),
        "next_follow_up_at": service.due_moment(date(2026, 3, 8)),
    }
    assert (await FollowUp.select(FollowUp.deleted_at).where(FollowUp.id == latest).first())["deleted_at"]
    assert await AuditLog.exists().where(AuditLog.entity == "follow_up", AuditLog.action == "delete")


# -- my follow-ups ------------------------------------------------------------------------------------------


async def test_my_followups_group_overdue_today_and_upcoming_around_midnight_in_shanghai(
    people: dict[str, CurrentUser],
) -> None:
    wang = people["wangfang"]
    due = {
        "曲靖宏达矿业有限公司": "2026-03-15",
        "玉溪市自然资源局": "2026-03-16",
        "大理苍山旅游开发有限公司": "2026-03-14",
        "昆明滇池投资有限责任公司": "2026-03-29",
        "文山州住房和城乡建设局": "2026-03-30",
        "红河州交通运输局": "2026-04-20",
    }
    mobiles = iter(f"138 0871 000{n}" for n in range(1, 7))
    for name, day in due.items():
        customer_id = await make_customer(wang, name=name, mobile=next(mobiles))
        await service.add_followup(
            wang,
            customer_id,
            {"content": f"{name}：约定回访。", "happened_at": "2026-03-10T10:00", "next_follow_up_at": day},
        )
    other = await make_customer(people["liqiang"], name="楚雄州水务局", mobile="139 0000 2222")
    await service.add_followup(
        people["liqiang"],
        other,
        {"content": "回访。", "happened_at": "2026-03-10T10:00", "next_follow_up_at": "2026-03-15"},
    )

    def names(rows: list[dict]) -> list[str]:
        return [row["name"] for row in rows]

    # 23:59 on the 15th in Kunming is 15:59 UTC: the 15th is still today.
    late = await service.my_followups(wang, now=shanghai("2026-03-15 23:59"))
    assert names(late["overdue"]) == ["大理苍山旅游开发有限公司"]
    assert names(late["today"]) == ["曲靖宏达矿业有限公司"]
    assert names(late["upcoming"]) == ["玉溪市自然资源局", "昆明滇池投资有限责任公司"]
    # Upcoming is the next 14 days: the 29th, not the 30th.
    assert late["later"] == 2
    assert late["today"][0]["snippet"] == "曲靖宏达矿业有限公司：约定回访。"
    assert late["today"][0]["mobile_display"] == "138 0871 0001"

    # One minute later it is the 16th in Kunming, though still the 15th in UTC.
    early = await service.my_followups(wang, now=shanghai("2026-03-16 00:01"))
    assert names(early["overdue"]) == ["大理苍山旅游开发有限公司", "曲靖宏达矿业有限公司"]
    assert names(early["today"]) == ["玉溪市自然资源局"]
    assert names(early["upcoming"]) == ["昆明滇池投资有限责任公司", "文山州住房和城乡建设局"]
    assert early["counts"] == {"overdue": 2, "today": 1, "upcoming": 2, "later": 1}

    # Staff cannot look at a colleague's list; a supervisor can.
    peek = await service.my_followups(wang, people["liqiang"].account_id, now=shanghai("2026-03-15 12:00"))
    assert peek["owner_id"] == wang.account_id
    theirs = await service.my_followups(
        people["zhangwei"], people["liqiang"].account_id, now=shanghai("2026-03-15 12:00")
    )
    assert names(theirs["today"]) == ["楚雄州水务局"]


async def test_my_followups_page_and_supervisor_picking_a_staff_member(
    staff: AsyncTestClient, supervisor: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    customer_id = await make_customer(wang, name="昆明理工大学后勤处")
    today = local(datetime.now(UTC)).date()
    await service.add_followup(
        wang, customer_id, {"content": "发送校园测绘报价单。", "next_follow_up_at": today.isoformat()}
    )

    page = await staff.get("/followups/mine")
    assert page.status_code == 200
    assert 'href="/followups/mine" aria-current="page"' in page.text
    text = text_of(page.text)
    assert "昆明理工大学后勤处" in text and "发送校园测绘报价单。" in text
    assert 'id="due-today"' in page.text and 'name="owner"' not in page.text

    own = await supervisor.get("/followups/mine")
    assert "昆明理工大学后勤处" not in own.text and 'name="owner"' in own.text
    fragment = await supervisor.get(f"/followups/mine?owner={wang.account_id}", headers=htmx("due-list"))
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "昆明理工大学后勤处" in fragment.text


# -- every route: login and CSRF ----------------------------------------------------------------------------


ROUTES = [
    ("GET", "/followups/mine"),
    ("GET", "/customers/{c}/followups"),
    ("POST", "/customers/{c}/followups"),
    ("GET", "/customers/{c}/followups/{f}"),
    ("GET", "/customers/{c}/followups/{f}/edit"),
    ("PUT", "/customers/{c}/followups/{f}"),
    ("POST", "/customers/{c}/followups/{f}"),
    ("POST", "/customers/{c}/followups/{f}/delete"),
]


async def test_every_route_sends_anonymous_visitors_to_the_login_page(
    anonymous: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    customer_id = await make_customer(people["wangfang"])
    followup_id = await service.add_followup(people["wangfang"], customer_id, {"content": "电话沟通。"})
    await anonymous.get("/login")
    token = anonymous.cookies.get("csrftoken") or ""
    for method, path in ROUTES:
        url = path.format(c=customer_id, f=followup_id)
        response = await anonymous.request(
            method, url, data={"content": "匿名"}, headers={"x-csrftoken": token}, follow_redirects=False
        )
        assert response.status_code == 303, (method, url)
        assert response.headers["location"].startswith("/login"), (method, url)
    assert await FollowUp.count() == 1


async def test_every_write_needs_the_csrf_token(staff: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    customer_id = await make_customer(people["wangfang"])
    followup_id = await service.add_followup(people["wangfang"], customer_id, {"content": "电话沟通。"})
    token = staff.headers.pop("x-csrftoken")
    try:
        for method, path in ROUTES:
            if method == "GET":
                continue
            url = path.format(c=customer_id, f=followup_id)
            response = await staff.request(method, url, data={"content": "伪造请求"})
            assert response.status_code == 403, (method, url)
    finally:
        staff.headers["x-csrftoken"] = token
    assert await FollowUp.count() == 1
