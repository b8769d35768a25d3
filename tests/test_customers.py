"""The customer database as staff use it: list, new customer with duplicate warning, the customer page with
click-to-edit fields, contacts, projects, conversion, reassignment and soft delete."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import pytest
from litestar.testing import AsyncTestClient

from app.accounts.service import CurrentUser
from app.core.tables import AuditLog, SearchOutbox
from app.customers import service
from app.customers.tables import Contact, Customer, Project
from app.labels import label
from app.options.tables import OptionItem
from tests.conftest import text_of

pytestmark = pytest.mark.db


async def make_customer(owner: CurrentUser, **fields: str) -> int:
    data = {"name": "昆明华信勘测设计有限公司", "origin": "own", "province": "云南省", "city": "昆明市", **fields}
    return await service.create_customer(owner, data)


async def to_pool(customer_id: int) -> None:
    await Customer.update({Customer.owner: None}).where(Customer.id == customer_id)


# -- list ---------------------------------------------------------------------------------------------------


async def test_list_shows_prospects_and_members_in_separate_tabs_with_counts(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    await make_customer(wang, name="曲靖宏达矿业有限公司")
    await make_customer(wang, name="玉溪市自然资源局", kind="member")
    await make_customer(wang, name="李明")

    prospects = await staff.get("/customers")
    assert prospects.status_code == 200
    text = text_of(prospects.text)
    assert "曲靖宏达矿业有限公司" in text and "李明" in text
    assert "玉溪市自然资源局" not in text
    assert 'aria-current="page"' in prospects.text

    members = await staff.get("/customers?kind=member")
    assert "玉溪市自然资源局" in text_of(members.text)
    assert "曲靖宏达矿业有限公司" not in text_of(members.text)
    page = await service.list_customers(wang, service.CustomerFilters(kind="member"))
    assert page.counts == {"prospect": 2, "member": 1}


async def test_tab_sizes_follow_every_change_of_owner_kind_and_deletion(people: dict[str, CurrentUser]) -> None:
    """The unfiltered list takes its tab sizes from the tallies the database keeps; they must equal a count of
    the rows after anything that moves a customer between owners, tabs or the bin."""
    wang, li, boss, admin = people["wangfang"], people["liqiang"], people["zhangwei"], people["admin"]
    first = await make_customer(wang, name="曲靖宏达矿业有限公司")
    second = await make_customer(wang, name="玉溪市自然资源局", kind="member")
    third = await make_customer(li, name="大理州住房和城乡建设局")
    await to_pool(third)
    await service.set_owner(boss, second, li.account_id)
    await service.convert_to_member(wang, first)
    await service.soft_delete(wang, first)
    await service.restore(admin, first)
    await service.soft_delete(li, second)
    await Customer.delete().where(Customer.id == second)

    tallied = await Customer.raw("SELECT owner, kind, live FROM customer_tally WHERE live <> 0")
    rows = await Customer.raw(
        "SELECT coalesce(owner, 0) AS owner, kind, count(*) AS live FROM customer WHERE deleted_at IS NULL "
        "GROUP BY coalesce(owner, 0), kind"
    )
    assert sorted(tuple(row.values()) for row in tallied) == sorted(tuple(row.values()) for row in rows)

    for user, owner, expected in [
        (boss, "", {"prospect": 1, "member": 1}),
        (wang, "", {"prospect": 1, "member": 1}),
        (wang, "me", {"prospect": 0, "member": 1}),
        (li, "", {"prospect": 1, "member": 0}),
        (boss, "pool", {"prospect": 1, "member": 0}),
        (boss, str(wang.account_id), {"prospect": 0, "member": 1}),
        (li, str(wang.account_id), {"prospect": 0, "member": 0}),
    ]:
        page = await service.list_customers(user, service.CustomerFilters(owner=owner))
        assert page.counts == expected, (user.name, owner)


async def test_filters_live_in_the_url_and_combine(staff: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    channel = await OptionItem.select().where(OptionItem.label == "展会").first()
    await make_customer(
        wang,
        name="大理苍山旅游开发有限公司",
        province="云南省",
        city="大理白族自治州",
        source_channel=str(channel["id"]),
    )
    await make_customer(wang, name="广州南沙测绘有限公司", province="广东省", city="广州市")

    response = await staff.get(f"/customers?province=云南省&channel={channel['id']}")
    text = text_of(response.text)
    assert "大理苍山旅游开发有限公司" in text
    assert "广州南沙测绘有限公司" not in text

    fragment = await staff.get(
        "/customers?province=广东省", headers={"HX-Request": "true", "HX-Target": "customer-results"}
    )
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert "广州南沙测绘有限公司" in fragment.text
    assert 'id="filter-city"' in fragment.text and "hx-swap-oob" in fragment.text
    assert fragment.headers["hx-push-url"] == "/customers?kind=prospect&province=%E5%B9%BF%E4%B8%9C%E7%9C%81"


async def test_malformed_filters_are_ignored_not_errors(staff: AsyncTestClient) -> None:
    response = await staff.get("/customers?page=abc&channel=x&budget=-1&sort=drop table&kind=nope&owner=99999999999")
    assert response.status_code == 200


async def test_activity_filter_splits_active_and_inactive(people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    active = await make_customer(wang, name="陈丽")
    inactive = await make_customer(wang, name="周强")
    now = datetime.now(UTC)
    await Customer.update({Customer.last_contact_at: now - timedelta(days=5)}).where(Customer.id == active)
    await Customer.update({Customer.last_contact_at: now - timedelta(days=400)}).where(Customer.id == inactive)

    shown = await service.list_customers(wang, service.CustomerFilters(activity="active"))
    assert [row["id"] for row in shown.rows] == [active]
    shown = await service.list_customers(wang, service.CustomerFilters(activity="inactive"))
    assert [row["id"] for row in shown.rows] == [inactive]


async def test_search_box_finds_by_name_part_and_mobile_digits(people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    target = await make_customer(wang, name="红河州交通运输局", mobile="139 8765 4321")
    await make_customer(wang, name="文山州水务局")
    by_name = await service.list_customers(wang, service.CustomerFilters(q="交通"))
    assert [row["id"] for row in by_name.rows] == [target]
    by_digits = await service.list_customers(wang, service.CustomerFilters(q="8765-4321"))
    assert [row["id"] for row in by_digits.rows] == [target]


async def test_pagination_keeps_the_filters(staff: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    for number in range(service.PAGE_SIZE + 3):
        await make_customer(wang, name=f"测试客户{number:02d}号", province="四川省", city="成都市")
    response = await staff.get("/customers?province=四川省&page=2")
    assert response.status_code == 200
    assert "province=%E5%9B%9B%E5%B7%9D%E7%9C%81" in response.text
    page = await service.list_customers(wang, service.CustomerFilters(province="四川省", page=2))
    assert len(page.rows) == 3 and page.pages == 2
    beyond = await service.list_customers(wang, service.CustomerFilters(page=999))
    assert beyond.filters.page == beyond.pages


@pytest.mark.parametrize(
    "query",
    [
        "created_from=2026-13-45&created_to=yesterday",
        "created_from=20260301&created_to=2026-3-31",
        "created_from=0001-01-01&created_to=9999-12-31",
        "created_from=2026-02-30",
        "industry=mining&segment=vip",
        "industry=-3&segment=IMPORTANT_VALUE",
        "industry=99999999999",
    ],
)
async def test_malformed_analysis_filters_are_dropped(
    staff: AsyncTestClient, people: dict[str, CurrentUser], query: str
) -> None:
    await make_customer(people["wangfang"], name="昆明华信勘测设计有限公司")
    filters = service.CustomerFilters.from_query(dict(parse_qsl(query)))
    assert not filters.is_filtered and filters.query() == "kind=prospect"
    response = await staff.get(f"/customers?{query}")
    assert response.status_code == 200
    assert "昆明华信勘测设计有限公司" in text_of(response.text)


def test_the_date_range_is_whole_shanghai_days() -> None:
    filters = service.CustomerFilters.from_query({"created_from": "2026-03-01", "created_to": "2026-03-31"})
    assert filters.created_since == datetime(2026, 2, 28, 16, tzinfo=UTC)
    assert filters.created_before == datetime(2026, 3, 31, 16, tzinfo=UTC)
    assert filters.query() == "kind=prospect&created_from=2026-03-01&created_to=2026-03-31"
    reversed_ = service.CustomerFilters.from_query({"created_from": "2026-03-31", "created_to": "2026-03-01"})
    assert reversed_ == filters
    open_ended = service.CustomerFilters.from_query({"created_to": "2026-03-31"})
    assert open_ended.created_since is None and open_ended.is_filtered


async def test_pagination_keeps_the_analysis_filters(staff: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    mining = await OptionItem.select(OptionItem.id).where(OptionItem.label == "矿业").first()
    ids = [
        await make_customer(wang, name=f"矿业客户{number:02d}号", industry=str(mining["id"]))
        for number in range(service.PAGE_SIZE + 2)
    ]
    # Entered on 1 March in Shanghai (still 28 February in UTC), and one the day before.
    await Customer.update(
        {Customer.created_at: datetime(2026, 2, 28, 17, tzinfo=UTC), Customer.rfm_segment: "important_develop"}
    ).where(Customer.id.is_in(ids[1:]))
    await Customer.update(
        {Customer.created_at: datetime(2026, 2, 28, 15, 59, tzinfo=UTC), Customer.rfm_segment: "important_develop"}
    ).where(Customer.id == ids[0])
    query = f"created_from=2026-03-01&created_to=2026-03-31&industry={mining['id']}&segment=important_develop"

    first = await staff.get(f"/customers?{query}")
    expected = service.CustomerFilters.from_query(dict(parse_qsl(query)))
    assert f'href="/customers?{expected.query(page=2).replace("&", "&amp;")}"' in first.text
    assert "矿业客户00号" not in text_of(first.text)
    second = await staff.get(f"/customers?{expected.query(page=2)}")
    assert text_of(second.text).count("矿业客户") == 1
    page = await service.list_customers(wang, replace(expected, page=2))
    assert (page.total, page.pages, len(page.rows)) == (service.PAGE_SIZE + 1, 2, 1)
    assert page.counts == {"prospect": service.PAGE_SIZE + 1, "member": 0}


# -- scope --------------------------------------------------------------------------------------------------


async def test_staff_see_their_own_customers_and_the_pool_only(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    mine = await make_customer(people["wangfang"], name="王芳的客户")
    theirs = await make_customer(people["liqiang"], name="李强的客户")
    pooled = await make_customer(people["liqiang"], name="公海客户")
    await to_pool(pooled)

    text = text_of((await staff.get("/customers")).text)
    assert "王芳的客户" in text and "公海客户" in text
    assert "李强的客户" not in text
    assert (await staff.get(f"/customers/{mine}")).status_code == 200
    assert (await staff.get(f"/customers/{pooled}")).status_code == 200
    assert (await staff.get(f"/customers/{theirs}")).status_code == 404


async def test_staff_cannot_touch_another_staffs_customer(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    theirs = await make_customer(people["liqiang"], name="李强的客户")
    attempts = [
        staff.get(f"/customers/{theirs}/fields/name/edit"),
        staff.put(f"/customers/{theirs}/fields/name", data={"value": "改名"}),
        staff.post(f"/customers/{theirs}/convert"),
        staff.post(f"/customers/{theirs}/delete"),
        staff.post(f"/customers/{theirs}/claim"),
        staff.post(f"/customers/{theirs}/contacts", data={"name": "张三"}),
        staff.post(f"/customers/{theirs}/projects", data={"name": "测绘项目", "amount": "1000"}),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 404, response.request.url
    assert (await Customer.select(Customer.name).where(Customer.id == theirs).first())["name"] == "李强的客户"


async def test_supervisor_sees_everyone_and_reassigns(
    supervisor: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    theirs = await make_customer(people["liqiang"], name="李强的客户")
    assert (await supervisor.get(f"/customers/{theirs}")).status_code == 200
    response = await supervisor.post(
        f"/customers/{theirs}/owner", data={"owner": str(people["wangfang"].account_id)}, follow_redirects=False
    )
    assert response.status_code == 303
    row = await Customer.select(Customer.owner).where(Customer.id == theirs).first()
    assert row["owner"] == people["wangfang"].account_id
    audit = await (
        AuditLog.select()
        .where(AuditLog.entity_id == theirs, AuditLog.action == "assign")
        .first()
        .output(load_json=True)
    )
    assert audit["diff"]["owner"] == [people["liqiang"].account_id, people["wangfang"].account_id]
    assert audit["actor"] == people["zhangwei"].account_id


async def test_staff_cannot_reassign_but_can_claim_from_the_pool(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    pooled = await make_customer(people["liqiang"], name="公海客户")
    await to_pool(pooled)
    refused = await staff.post(f"/customers/{pooled}/owner", data={"owner": str(people["liqiang"].account_id)})
    assert refused.status_code == 403
    claimed = await staff.post(f"/customers/{pooled}/claim", follow_redirects=False)
    assert claimed.status_code == 303
    row = await Customer.select(Customer.owner).where(Customer.id == pooled).first()
    assert row["owner"] == people["wangfang"].account_id


# -- new customer and duplicates ----------------------------------------------------------------------------


async def test_new_customer_is_saved_with_normalised_contact_data(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    response = await staff.post(
        "/customers",
        data={
            "name": "  昆明滇池水务有限公司 ",
            "mobile": "+86 138-7100-1234",
            "email": " Purchase@DianChi.cn ",
            "wechat": "DianChi Water",
            "province": "云南",
            "city": "昆明",
            "origin": "external",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    row = await Customer.select().where(Customer.name == "昆明滇池水务有限公司").first()
    assert row["mobile"] == "13871001234"
    assert row["email"] == "purchase@dianchi.cn"
    assert row["wechat"] == "dianchiwater"
    assert (row["province"], row["city"]) == ("云南省", "昆明市")
    assert row["owner"] == people["wangfang"].account_id
    assert row["kind"] == "prospect" and row["origin"] == "external"
    assert response.headers["location"] == f"/customers/{row['id']}"
    assert await AuditLog.exists().where(AuditLog.entity == "customer", AuditLog.entity_id == row["id"])
    assert await SearchOutbox.exists().where(SearchOutbox.entity == "customer", SearchOutbox.entity_id == row["id"])


async def test_new_customer_with_bad_input_keeps_everything_typed(staff: AsyncTestClient) -> None:
    response = await staff.post(
        "/customers",
        data={
            "name": "",
            "mobile": "12345",
            "email": "not-an-email",
            "company": "云南地矿测绘院",
            "province": "火星",
            "origin": "own",
        },
    )
    assert response.status_code == 422
    assert 'value="云南地矿测绘院"' in response.text
    assert 'value="12345"' in response.text
    assert 'value="not-an-email"' in response.text
    assert response.text.count('class="field-error"') == 4
    assert 'aria-invalid="true"' in response.text
    assert not await Customer.exists()


@pytest.mark.parametrize(
    ("existing", "typed"),
    [
        ({"mobile": "13812345678"}, {"mobile": "+86 138-1234-5678"}),
        ({"email": "boss@dianchi.cn"}, {"email": "BOSS@dianchi.cn"}),
        ({"wechat": "kmzhang88"}, {"wechat": "KMZhang88"}),
        ({"name": "云南省昆明市华信勘测设计有限公司"}, {"name": "昆明华信勘测设计有限责任公司"}),
    ],
)
async def test_duplicate_warning_before_saving(
    staff: AsyncTestClient, people: dict[str, CurrentUser], existing: dict[str, str], typed: dict[str, str]
) -> None:
    existing_id = await make_customer(people["wangfang"], **{"name": "原有客户", **existing})
    form = {"name": "新客户", "origin": "own", **typed}

    warning = await staff.post("/customers/duplicates", data=form)
    assert f'href="/customers/{existing_id}"' in warning.text

    first_try = await staff.post("/customers", data=form, follow_redirects=False)
    assert first_try.status_code == 200
    assert "duplicate-warning" in first_try.text
    assert 'name="confirm_duplicates"' in first_try.text
    assert await Customer.count() == 1

    saved = await staff.post("/customers", data={**form, "confirm_duplicates": "1"}, follow_redirects=False)
    assert saved.status_code == 303
    assert await Customer.count() == 2


async def test_duplicate_of_a_colleagues_customer_is_named_without_a_link(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    theirs = await make_customer(people["liqiang"], name="李强的客户", mobile="13900001111")
    warning = await staff.post("/customers/duplicates", data={"mobile": "139 0000 1111"})
    assert "李强的客户" in warning.text
    assert f"/customers/{theirs}" not in warning.text


async def test_contact_mobile_counts_as_a_duplicate(people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    customer_id = await make_customer(wang, name="云南铜业集团")
    await service.add_contact(wang, customer_id, {"name": "赵刚", "mobile": "13700002222"})
    found = await service.find_duplicates(wang, mobile="137-0000-2222")
    assert [dup.id for dup in found] == [customer_id]


async def test_a_similar_name_in_another_city_is_no_duplicate(people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    # Older customers of the same name elsewhere do not crowd out the one in the same city.
    elsewhere = ("玉溪市", "曲靖市", "大理市", "保山市", "昭通市", "丽江市", "普洱市", "临沧市", "楚雄市", "文山市")
    for city in elsewhere:
        await make_customer(wang, name=f"{city[:2]}交通运输局", city=city)
    kunming = await make_customer(wang, name="昆明市交通运输局", city="昆明市")

    async def similar(**fields: str) -> list[int]:
        return [dup.id for dup in await service.find_duplicates(wang, **fields) if "名称相似" in dup.reasons]

    assert await similar(name="交通运输局", province="云南", city="昆明") == [kunming]
    assert await similar(name="昆明市交通运输局") == [kunming]
    assert await similar(name="交通运输局", city="西双版纳") == []
    assert kunming not in await similar(name="玉溪市交通运输局")


# -- customer page: click to edit ---------------------------------------------------------------------------


async def test_customer_page_shows_everything_in_one_place(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    customer_id = await make_customer(wang, needs="需要1:500地形图测绘，约2平方公里")
    await service.add_contact(wang, customer_id, {"name": "杨总", "title": "总经理", "decision_maker": "on"})
    await service.add_project(wang, customer_id, {"name": "滇池片区地形测量", "amount": "12万", "status": "completed"})
    response = await staff.get(f"/customers/{customer_id}")
    text = text_of(response.text)
    for expected in ("昆明华信勘测设计有限公司", "需要1:500地形图测绘", "杨总", "滇池片区地形测量", "¥120,000.00"):
        assert expected in text
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert response.headers["x-frame-options"] == "DENY"


async def test_field_is_edited_in_place(staff: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    customer_id = await make_customer(people["wangfang"])
    htmx = {"HX-Request": "true", "HX-Target": "field-title"}

    form = await staff.get(f"/customers/{customer_id}/fields/title/edit", headers=htmx)
    assert form.status_code == 200
    assert "<html" not in form.text and 'name="value"' in form.text

    saved = await staff.put(f"/customers/{customer_id}/fields/title", data={"value": "总工程师"}, headers=htmx)
    assert saved.status_code == 200
    assert "总工程师" in saved.text and 'id="field-title"' in saved.text

    shown = await staff.get(f"/customers/{customer_id}/fields/title", headers=htmx)
    assert "总工程师" in shown.text
    audit = await (
        AuditLog.select()
        .where(AuditLog.entity_id == customer_id, AuditLog.action == "update")
        .first()
        .output(load_json=True)
    )
    assert audit["diff"] == {"title": ["", "总工程师"]}
    history = text_of((await staff.get(f"/customers/{customer_id}")).text)
    assert "总工程师" in history and "王芳" in history


async def test_invalid_field_value_gets_422_with_the_input_kept(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    customer_id = await make_customer(people["wangfang"], mobile="13812345678")
    response = await staff.put(
        f"/customers/{customer_id}/fields/mobile", data={"value": "138-12"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    assert 'value="138-12"' in response.text
    assert 'class="field-error"' in response.text
    row = await Customer.select(Customer.mobile).where(Customer.id == customer_id).first()
    assert row["mobile"] == "13812345678"


async def test_field_edit_works_without_javascript(staff: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    customer_id = await make_customer(people["wangfang"])
    page = await staff.get(f"/customers/{customer_id}/fields/address/edit")
    assert "<html" in page.text and 'action="/customers/' in page.text
    saved = await staff.post(
        f"/customers/{customer_id}/fields/address", data={"value": "昆明市盘龙区北京路100号"}, follow_redirects=False
    )
    assert saved.status_code == 303
    bad = await staff.post(f"/customers/{customer_id}/fields/email", data={"value": "x@"})
    assert bad.status_code == 422 and "<html" in bad.text and 'value="x@"' in bad.text


async def test_changing_province_drops_a_city_that_is_not_in_it(people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    customer_id = await make_customer(wang, province="云南省", city="昆明市")
    await service.update_field(wang, customer_id, "province", "贵州")
    row = await Customer.select(Customer.province, Customer.city).where(Customer.id == customer_id).first()
    assert row == {"province": "贵州省", "city": ""}


async def test_unknown_field_and_bad_ids_are_4xx_not_500(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    customer_id = await make_customer(people["wangfang"])
    assert (await staff.get(f"/customers/{customer_id}/fields/password/edit")).status_code == 404
    assert (await staff.put(f"/customers/{customer_id}/fields/owner", data={"value": "1"})).status_code == 404
    assert (await staff.get("/customers/abc")).status_code == 404
    assert (await staff.get("/customers/99999999")).status_code == 404
    assert (await staff.get("/customers/-1")).status_code == 400
    assert (await staff.get("/customers/99999999999999999999")).status_code == 400


async def test_only_supervisors_pin_a_value_tier(
    staff: AsyncTestClient, supervisor: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    customer_id = await make_customer(people["wangfang"])
    assert (await staff.put(f"/customers/{customer_id}/fields/value_tier", data={"value": "A"})).status_code == 403
    response = await supervisor.put(
        f"/customers/{customer_id}/fields/value_tier", data={"value": "A"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    row = await Customer.select(Customer.value_tier, Customer.tier_pinned).where(Customer.id == customer_id).first()
    assert row == {"value_tier": "A", "tier_pinned": True}


# -- contacts and projects ----------------------------------------------------------------------------------


async def test_contacts_are_added_edited_and_removed_inline(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    customer_id = await make_customer(people["wangfang"])
    htmx = {"HX-Request": "true"}
    added = await staff.post(
        f"/customers/{customer_id}/contacts", data={"name": "刘洋", "mobile": "13988887777"}, headers=htmx
    )
    assert added.status_code == 200 and "刘洋" in added.text and 'id="contacts"' in added.text
    contact = await Contact.select().where(Contact.customer == customer_id).first()

    bad = await staff.put(
        f"/customers/{customer_id}/contacts/{contact['id']}", data={"name": "刘洋", "mobile": "123"}, headers=htmx
    )
    assert bad.status_code == 422 and 'value="123"' in bad.text

    saved = await staff.put(
        f"/customers/{customer_id}/contacts/{contact['id']}",
        data={"name": "刘洋", "title": "采购经理", "mobile": "139 8888 7777"},
        headers=htmx,
    )
    assert saved.status_code == 200 and "采购经理" in saved.text

    removed = await staff.post(f"/customers/{customer_id}/contacts/{contact['id']}/delete", headers=htmx)
    assert removed.status_code == 200 and "刘洋" not in removed.text
    assert (await Contact.select(Contact.deleted_at).where(Contact.id == contact["id"]).first())["deleted_at"]
    outbox = await SearchOutbox.select().where(SearchOutbox.entity == "customer", SearchOutbox.entity_id == customer_id)
    assert len(outbox) >= 4


async def test_contact_of_another_customer_is_404(staff: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    first = await make_customer(wang, name="甲公司")
    second = await make_customer(wang, name="乙公司")
    contact_id = await service.add_contact(wang, first, {"name": "刘洋"})
    assert (await staff.get(f"/customers/{second}/contacts/{contact_id}/edit")).status_code == 404


async def test_projects_keep_money_exact(staff: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    customer_id = await make_customer(people["wangfang"])
    response = await staff.post(
        f"/customers/{customer_id}/projects",
        data={"name": "矿区地质灾害评估", "amount": "1,234,567.89", "signed_on": "2026-03-15", "status": "in_progress"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "¥1,234,567.89" in response.text
    project = await Project.select().where(Project.customer == customer_id).first()
    assert project["amount_fen"] == 123456789
    customer = await Customer.select(Customer.last_contact_at).where(Customer.id == customer_id).first()
    assert customer["last_contact_at"].date().isoformat() == "2026-03-15"

    bad = await staff.post(
        f"/customers/{customer_id}/projects",
        data={"name": "", "amount": "十万", "signed_on": "2026-13-45"},
        headers={"HX-Request": "true"},
    )
    assert bad.status_code == 422
    assert 'value="十万"' in bad.text
    assert bad.text.count('class="field-error"') == 3


async def test_a_customers_revenue_follows_its_projects(people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    customer_id = await make_customer(wang)

    async def revenue() -> int:
        row = await Customer.select(Customer.revenue_fen).where(Customer.id == customer_id).first()
        return row["revenue_fen"]

    first = await service.add_project(wang, customer_id, {"name": "一期监测", "amount": "12万", "status": "completed"})
    second = await service.add_project(
        wang, customer_id, {"name": "二期监测", "amount": "3,500", "status": "negotiating"}
    )
    assert await revenue() == 12_350_000
    # A cancelled project brings no revenue; a deleted one neither.
    await service.update_project(
        wang, customer_id, second, {"name": "二期监测", "amount": "3,500", "status": "cancelled"}
    )
    assert await revenue() == 12_000_000
    await service.delete_project(wang, customer_id, first)
    assert await revenue() == 0


@pytest.mark.parametrize(
    ("typed", "fen"), [("120000", 12000000), ("12万", 12000000), ("¥3,500.5", 350050), ("0.01", 1), ("", 0)]
)
def test_amounts_are_parsed_to_whole_fen(typed: str, fen: int) -> None:
    assert service.parse_amount(typed or "0") == fen


@pytest.mark.parametrize("typed", ["abc", "-5", "1e400", "NaN", "Infinity", "10000000000000"])
def test_nonsense_amounts_are_refused(typed: str) -> None:
    with pytest.raises(ValueError):
        service.parse_amount(typed)


# -- conversion and deletion --------------------------------------------------------------------------------


async def test_convert_to_member_moves_it_to_the_members_tab(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    customer_id = await make_customer(people["wangfang"], name="楚雄州林业和草原局")
    response = await staff.post(f"/customers/{customer_id}/convert", follow_redirects=False)
    assert response.status_code == 303
    row = await Customer.select(Customer.kind, Customer.converted_at).where(Customer.id == customer_id).first()
    assert row["kind"] == "member" and row["converted_at"] is not None
    audit = await (
        AuditLog.select()
        .where(AuditLog.entity_id == customer_id, AuditLog.action == "convert")
        .first()
        .output(load_json=True)
    )
    assert audit["diff"]["kind"] == ["prospect", "member"]
    assert "楚雄州林业和草原局" in text_of((await staff.get("/customers?kind=member")).text)
    assert "楚雄州林业和草原局" not in text_of((await staff.get("/customers?kind=prospect")).text)


async def test_soft_delete_and_admin_restore(
    staff: AsyncTestClient, admin: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    customer_id = await make_customer(people["wangfang"], name="保山市农业农村局")
    confirm = await staff.get(f"/customers/{customer_id}/delete")
    assert confirm.status_code == 200 and 'method="post"' in confirm.text

    deleted = await staff.post(f"/customers/{customer_id}/delete", follow_redirects=False)
    assert deleted.status_code == 303
    assert (await staff.get(f"/customers/{customer_id}")).status_code == 404
    assert "保山市农业农村局" not in text_of((await staff.get("/customers")).text)
    assert await Customer.exists().where(Customer.id == customer_id)

    assert (await staff.post(f"/customers/{customer_id}/restore")).status_code == 404
    assert (await staff.get("/customers/deleted")).status_code == 403
    assert "保山市农业农村局" in text_of((await admin.get("/customers/deleted")).text)
    restored = await admin.post(f"/customers/{customer_id}/restore", follow_redirects=False)
    assert restored.status_code == 303
    assert (await staff.get(f"/customers/{customer_id}")).status_code == 200


async def test_htmx_delete_sends_the_browser_to_the_list(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    customer_id = await make_customer(people["wangfang"])
    response = await staff.post(f"/customers/{customer_id}/delete", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["hx-location"] == "/customers"


async def test_visitor_text_is_escaped_everywhere_it_shows(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    customer_id = await make_customer(people["wangfang"], name=payload, needs=payload)
    for url in ("/customers", f"/customers/{customer_id}"):
        response = await staff.get(url)
        assert "<script>alert" not in response.text
        assert "<img src=x" not in response.text
        assert "&lt;script&gt;" in response.text


async def test_change_history_reads_in_words_not_codes(
    supervisor: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    zhang = people["zhangwei"]
    customer_id = await make_customer(people["wangfang"])
    channel = await OptionItem.select().where(OptionItem.label == "展会").first()
    await service.update_field(zhang, customer_id, "source_channel", str(channel["id"]))
    await service.update_field(zhang, customer_id, "origin", "external")
    await service.set_owner(zhang, customer_id, people["liqiang"].account_id)
    history = (await supervisor.get(f"/customers/{customer_id}")).text
    section = text_of(history[history.index('id="history"') :])
    assert "展会" in section
    assert label("external") in section
    assert "王芳" in section and "李强" in section
    assert "external" not in section


async def test_a_new_follow_up_refreshes_the_contact_dates_beside_it(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    customer_id = await make_customer(people["wangfang"])
    response = await staff.post(
        f"/customers/{customer_id}/followups",
        data={"content": "电话沟通，约下周拜访", "next_follow_up_at": "2030-01-15"},
        headers={"HX-Request": "true", "HX-Target": "followups"},
    )
    assert response.status_code == 200
    ownership = response.text[response.text.index('id="ownership"') :]
    assert 'hx-swap-oob="true"' in response.text
    assert "2030-01-15" in ownership
