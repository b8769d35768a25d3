"""The duplicate finder and merge as supervisors use them: the scan finds the customers that are one (whatever way
their mobile or name was written) and not those that only look alike, ranks them, remembers "not a duplicate";
a merge moves everything to the record that stays and can be undone exactly; staff never see any of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient

from app.accounts.service import CurrentUser
from app.chat.tables import ChatVisitor, Conversation
from app.core.tables import AuditLog, SearchOutbox
from app.customers import service as customers
from app.customers.tables import Contact, Customer, Project
from app.duplicates import finder, service
from app.duplicates.tables import CustomerMerge, DuplicatePair, PairStatus
from app.feedback import service as feedback_service
from app.feedback.tables import Feedback
from app.followups import service as followup_service
from app.followups.tables import FollowUp
from tests.conftest import text_of

pytestmark = pytest.mark.db


async def add(owner: CurrentUser, name: str, **fields: str) -> int:
    return await customers.create_customer(owner, {"name": name, "origin": "own", **fields})


async def pairs() -> dict[frozenset[int], dict]:
    rows = await DuplicatePair.select().where(DuplicatePair.status == PairStatus.open).output(load_json=True)
    return {frozenset((row["customer_a"], row["customer_b"])): row for row in rows}


def pair_of(found: dict[frozenset[int], dict], first: int, second: int) -> dict | None:
    return found.get(frozenset((first, second)))


# -- the finder ------------------------------------------------------------------------------------------------


async def test_a_mobile_written_any_way_pairs_the_customers(people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    first = await add(wang, "刘洋", mobile="+86 138-1234-5678")
    second = await add(wang, "刘阳明", mobile="１３８ １２３４ ５６７８")
    third = await add(wang, "陈静", mobile="0086 13812345678")
    stranger = await add(wang, "周杰", mobile="13912345678")
    await finder.scan()
    found = await pairs()
    for one, other in ((first, second), (first, third), (second, third)):
        assert "mobile" in pair_of(found, one, other)["reasons"]
    assert not any(stranger in pair for pair in found)


async def test_a_contacts_mobile_email_or_wechat_pairs_it_with_the_customer_who_has_it(
    people: dict[str, CurrentUser],
) -> None:
    wang = people["wangfang"]
    company = await add(wang, "曲靖宏达矿业有限公司")
    await customers.add_contact(wang, company, {"name": "李娜", "mobile": "139 8765 4321"})
    person = await add(wang, "李娜", mobile="13987654321")
    by_mail = await add(wang, "张磊", email="Zhang.Lei@Example.CN")
    await customers.add_contact(wang, company, {"name": "张磊", "email": "zhang.lei@example.cn"})
    await finder.scan()
    found = await pairs()
    assert pair_of(found, company, person)["reasons"][0] == "contact"
    assert pair_of(found, company, by_mail)["reasons"][0] == "contact"


async def test_email_and_wechat_pair_customers(people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    first = await add(wang, "赵磊", email="zhaolei@163.com", wechat="ZhaoLei_88")
    second = await add(wang, "赵雷", email=" ZHAOLEI@163.COM ", wechat="zhaolei_88")
    await finder.scan()
    reasons = pair_of(await pairs(), first, second)["reasons"]
    assert {"email", "wechat"} <= set(reasons)


async def test_company_names_pair_ignoring_legal_form_group_and_place(people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    full = await add(wang, "云南省昆明市华信勘测设计有限责任公司")
    short = await add(wang, "昆明华信勘测设计有限公司")
    group = await add(wang, "华信勘测设计集团")
    fullwidth = await add(wang, "（昆明）华信勘测设计有限公司")
    branch = await add(wang, "华信勘测设计股份有限责任公司（昆明）")
    # The city says the province, when a list put a wrong one before it.
    zunyi = await add(wang, "遵义市土地储备中心")
    wrong_province = await add(wang, "云南省遵义市土地储备中心")
    await finder.scan()
    found = await pairs()
    for one, other in (
        (full, short),
        (full, group),
        (short, group),
        (full, fullwidth),
        (short, branch),
        (zunyi, wrong_province),
    ):
        assert "name" in pair_of(found, one, other)["reasons"], (one, other)


async def test_same_pinyin_with_other_characters_pairs_organisations(people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    first = await add(wang, "昆明华信勘测设计有限公司")
    second = await add(wang, "昆明华鑫勘测设计有限公司")
    await finder.scan()
    pair = pair_of(await pairs(), first, second)
    assert pair["reasons"][0] == "pinyin"


async def test_look_alikes_are_not_paired(people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    # The same office in two cities is two customers.
    kunming = await add(wang, "昆明市自然资源和规划局")
    dali = await add(wang, "大理市自然资源和规划局")
    # Two people called 王芳 at different employers are two people; at the same one they are probably one.
    one = await add(wang, "王芳", company="昆明华信勘测设计有限公司")
    two = await add(wang, "王芳", company="曲靖宏达矿业有限公司")
    three = await add(wang, "王芳", company="曲靖宏达矿业集团")
    different = await add(wang, "昆明华信测绘有限公司")
    # A branch named for another city is another customer.
    branch = await add(wang, "华信勘测设计有限公司（大理）")
    head_office = await add(wang, "华信勘测设计有限公司（昆明）")
    # Two offices of different cities sharing a mailbox are still two customers.
    yuxi = await add(wang, "玉溪市农业农村局", email="nyncj@qq.com")
    yanan = await add(wang, "延安市农业农村局", email="nyncj@qq.com")
    await finder.scan()
    found = await pairs()
    assert pair_of(found, kunming, dali) is None
    assert pair_of(found, one, two) is None
    assert pair_of(found, one, three) is None
    assert set(pair_of(found, two, three)["reasons"]) >= {"person_name", "company"}
    assert not any(different in pair for pair in found)
    assert pair_of(found, yuxi, yanan) is None
    assert pair_of(found, branch, head_office) is None


async def test_deleted_customers_are_not_scanned(people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    first = await add(wang, "刘洋", mobile="13812345678")
    second = await add(wang, "刘洋", mobile="13812345678")
    await customers.soft_delete(wang, second)
    await finder.scan()
    assert pair_of(await pairs(), first, second) is None


async def test_a_rescan_keeps_the_pairs_found_again_updates_their_reasons_and_drops_the_rest(
    people: dict[str, CurrentUser],
) -> None:
    wang = people["wangfang"]
    first = await add(wang, "刘洋", mobile="13812345678")
    second = await add(wang, "刘阳", mobile="13812345678")
    third = await add(wang, "陈静", email="chenjing@163.com")
    fourth = await add(wang, "陈晶", email="chenjing@163.com")
    await finder.scan()
    kept = pair_of(await pairs(), first, second)
    await customers.update_field(wang, second, "name", "刘洋")
    await customers.update_field(wang, fourth, "email", "chen.jing@163.com")
    result = await finder.scan()
    found = await pairs()
    again = pair_of(found, first, second)
    assert again["id"] == kept["id"] and again["score"] > kept["score"]
    assert "person_name" in again["reasons"]
    assert pair_of(found, third, fourth) is None and result.pairs == 1


async def test_pairs_are_ranked_same_mobile_and_name_first(people: dict[str, CurrentUser]) -> None:
    wang, zhang = people["wangfang"], people["zhangwei"]
    name_only = (await add(wang, "玉溪恒通物流有限公司"), await add(wang, "玉溪恒通物流有限责任公司"))
    mobile_only = (await add(wang, "孙悦", mobile="13700001111"), await add(wang, "钱进", mobile="13700001111"))
    both = (
        await add(wang, "昭通金穗农业科技有限公司", mobile="13600002222"),
        await add(wang, "金穗农业科技集团", mobile="+86 136 0000 2222"),
    )
    await finder.scan()
    page = await service.list_pairs(zhang)
    order = [frozenset((row["customer_a"], row["customer_b"])) for row in page.pairs]
    assert order == [frozenset(both), frozenset(mobile_only), frozenset(name_only)]
    assert page.pairs[0]["score"] == 100
    assert page.pairs[0]["reasons"][:2] == ["mobile", "name"]
    by_name = await service.list_pairs(zhang, reason="name")
    assert {frozenset((row["customer_a"], row["customer_b"])) for row in by_name.pairs} == {
        frozenset(both),
        frozenset(name_only),
    }
    assert (await service.list_pairs(zhang, reason="nonsense")).total == 3


async def test_a_value_shared_by_many_customers_is_reported_not_paired(people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    switchboard = [await add(wang, f"客户{i:02d}号", mobile="13800008888") for i in range(finder.MAX_GROUP + 1)]
    result = await finder.scan()
    assert not any(set(pair) & set(switchboard) for pair in await pairs())
    assert {"reason": "mobile", "value": "13800008888", "customers": finder.MAX_GROUP + 1} in result.common
    assert (await service.scan_state()).common == result.common


async def test_not_a_duplicate_sticks_across_rescans(people: dict[str, CurrentUser]) -> None:
    wang, zhang = people["wangfang"], people["zhangwei"]
    first = await add(wang, "刘洋", mobile="13812345678")
    second = await add(wang, "刘洋", mobile="13812345678")
    await finder.scan()
    pair_id = pair_of(await pairs(), first, second)["id"]
    await service.dismiss_pair(zhang, pair_id)
    result = await finder.scan()
    assert result.pairs == 0 and await pairs() == {}
    dismissed = await service.list_pairs(zhang, tab="dismissed")
    assert [row["id"] for row in dismissed.pairs] == [pair_id]
    await service.reopen_pair(zhang, pair_id)
    assert pair_of(await pairs(), first, second)["id"] == pair_id


def test_the_worker_scans_nightly_after_three_and_when_asked() -> None:
    evening = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # 20:00 in Beijing
    done_tonight = service.ScanState(finished_at=datetime(2026, 11, 26, 19, 30, tzinfo=UTC))  # 03:30 Beijing
    assert not service.due(done_tonight, evening)
    assert service.due(done_tonight, datetime(2026, 11, 27, 19, 1, tzinfo=UTC))  # 03:01 the next night
    asked = service.ScanState(finished_at=done_tonight.finished_at, requested_at=evening)
    assert asked.pending and service.due(asked, evening)
    assert service.due(service.ScanState(), evening)


# -- merge and undo ------------------------------------------------------------------------------------------------


async def related_ids(customer_id: int) -> dict[str, set[int]]:
    return {
        name: {row["id"] for row in await table.select(table.id).where(table.customer == customer_id)}
        for name, table in service.MOVABLE.items()
    }


async def make_pair_with_history(people: dict[str, CurrentUser]) -> tuple[int, int, int]:
    """Two records of one company: the older with a contact and a project, the newer with everything else."""
    wang, li = people["wangfang"], people["liqiang"]
    old = await add(
        wang, "昆明华信勘测设计有限公司", mobile="13812345678", needs="地形测绘", province="云南省", city="昆明市"
    )
    new = await add(
        li,
        "云南华信勘测设计有限责任公司",
        mobile="138 1234 5678",
        email="info@huaxin.cn",
        needs="房屋安全鉴定",
        province="云南省",
        city="曲靖市",
    )
    await customers.add_contact(wang, old, {"name": "刘洋", "mobile": "13900001111"})
    await customers.add_project(wang, old, {"name": "地形测绘", "amount": "12000", "signed_on": "2026-03-01"})
    await customers.add_contact(li, new, {"name": "陈静"})
    gone = await customers.add_contact(li, new, {"name": "离职员工"})
    await customers.delete_contact(li, new, gone)
    await customers.add_project(li, new, {"name": "房屋安全鉴定", "amount": "3000.50", "signed_on": "2026-05-10"})
    next_time = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%d")
    await followup_service.add_followup(li, new, {"content": "电话沟通需求", "next_follow_up_at": next_time})
    await feedback_service.submit_feedback(customer_id=new, content="报告很专业", rating=5)
    visitor = ChatVisitor(token_hash="a" * 64, name="陈静", customer=new)
    await visitor.save()
    await Conversation.insert(Conversation(visitor=visitor.id, customer=new))
    await Customer.update({Customer.updated_at: datetime.now(UTC) + timedelta(minutes=1)}).where(Customer.id == new)
    await finder.scan()
    pair = pair_of(await pairs(), old, new)
    assert pair is not None
    return pair["id"], old, new


async def test_merge_moves_every_record_and_keeps_the_chosen_values(people: dict[str, CurrentUser]) -> None:
    zhang = people["zhangwei"]
    pair_id, old, new = await make_pair_with_history(people)
    before_old, before_new = await related_ids(old), await related_ids(new)
    assert all(before_new[name] for name in service.MOVABLE)
    merge_id = await service.merge(
        zhang,
        pair_id,
        {
            "survivor": str(old),
            "pick_name": str(old),
            "pick_place": str(new),
            "pick_needs": "both",
            "pick_owner": str(new),
        },
    )
    survivor = await Customer.select().where(Customer.id == old).first()
    merged = await Customer.select().where(Customer.id == new).first()
    assert survivor["deleted_at"] is None and merged["deleted_at"] is not None
    assert survivor["name"] == "昆明华信勘测设计有限公司"
    assert (survivor["province"], survivor["city"]) == ("云南省", "曲靖市")
    assert survivor["email"] == "info@huaxin.cn"  # empty on the survivor: the filled-in value by default
    assert survivor["needs"] == "地形测绘\n\n房屋安全鉴定"
    assert survivor["owner"] == people["liqiang"].account_id
    after = await related_ids(old)
    for name in service.MOVABLE:
        assert after[name] == before_old[name] | before_new[name], name
    assert await related_ids(new) == {name: set() for name in service.MOVABLE}
    # The survivor's own figures now count what moved to it.
    assert survivor["revenue_fen"] == 1_200_000 + 300_050
    assert survivor["next_follow_up_at"] is not None and survivor["last_contact_at"] is not None
    record = await CustomerMerge.select().where(CustomerMerge.id == merge_id).output(load_json=True).first()
    assert {name: set(ids) for name, ids in record["moved"].items()} == {
        name: ids for name, ids in before_new.items() if ids
    }
    audits = await AuditLog.select().where(AuditLog.action == "merge").output(load_json=True)
    assert {row["entity_id"] for row in audits} == {old, new}
    assert next(row for row in audits if row["entity_id"] == new)["diff"]["merged_into"] == [None, old]
    queued = {(row["entity"], row["entity_id"]) for row in await SearchOutbox.select()}
    assert {("customer", old), ("customer", new)} <= queued
    assert ("follow_up", next(iter(before_new["follow_up"]))) in queued
    assert (await DuplicatePair.select(DuplicatePair.status).where(DuplicatePair.id == pair_id).first())[
        "status"
    ] == PairStatus.merged


async def test_undo_restores_both_customers_exactly(people: dict[str, CurrentUser]) -> None:
    zhang = people["zhangwei"]
    pair_id, old, new = await make_pair_with_history(people)
    columns = [column for column in Customer._meta.columns if column._meta.name != "updated_at"]
    snapshot = {row["id"]: row for row in await Customer.select(*columns).where(Customer.id.is_in([old, new]))}
    related = {old: await related_ids(old), new: await related_ids(new)}
    merge_id = await service.merge(zhang, pair_id, {"survivor": str(old), "pick_name": str(new), "pick_needs": "both"})
    # Something added to the survivor after the merge stays with it.
    later = await customers.add_contact(zhang, old, {"name": "新联系人"})
    await service.undo_merge(zhang, merge_id)
    restored = {row["id"]: row for row in await Customer.select(*columns).where(Customer.id.is_in([old, new]))}
    assert restored == snapshot
    assert await related_ids(new) == related[new]
    assert await related_ids(old) == {**related[old], "contact": related[old]["contact"] | {later}}
    assert (await AuditLog.count().where(AuditLog.action == "unmerge")) == 2
    assert pair_of(await pairs(), old, new)["id"] == pair_id
    with pytest.raises(customers.NotVisible):
        await service.undo_merge(zhang, merge_id)


async def test_a_prospect_merged_with_a_member_becomes_a_member(people: dict[str, CurrentUser]) -> None:
    wang, zhang = people["wangfang"], people["zhangwei"]
    prospect = await add(wang, "刘洋", mobile="13812345678")
    member = await customers.create_customer(
        wang, {"name": "刘洋", "origin": "own", "mobile": "13812345678", "kind": "member"}
    )
    await finder.scan()
    pair_id = pair_of(await pairs(), prospect, member)["id"]
    comparison = await service.compare(zhang, await service.get_pair(zhang, pair_id))
    assert comparison.survivor == member
    await service.merge(zhang, pair_id, {"survivor": str(prospect)})
    row = await Customer.select(Customer.kind, Customer.converted_at).where(Customer.id == prospect).first()
    assert row["kind"] == "member" and row["converted_at"] is not None


async def test_merge_refuses_a_survivor_or_pick_outside_the_pair(people: dict[str, CurrentUser]) -> None:
    zhang = people["zhangwei"]
    pair_id, old, new = await make_pair_with_history(people)
    with pytest.raises(customers.FormErrors) as refused:
        await service.merge(zhang, pair_id, {"survivor": "999"})
    assert "survivor" in refused.value.errors
    with pytest.raises(customers.FormErrors) as refused:
        await service.merge(zhang, pair_id, {"survivor": str(old), "pick_name": "both"})
    assert "pick_name" in refused.value.errors
    assert (await Customer.select(Customer.deleted_at).where(Customer.id == new).first())["deleted_at"] is None


async def test_staff_cannot_merge_or_dismiss(people: dict[str, CurrentUser]) -> None:
    pair_id, old, _new = await make_pair_with_history(people)
    wang = people["wangfang"]
    for action in (
        service.list_pairs(wang),
        service.dismiss_pair(wang, pair_id),
        service.merge(wang, pair_id, {"survivor": str(old)}),
        service.request_scan(wang),
    ):
        with pytest.raises(customers.NotVisible):
            await action


# -- pages ----------------------------------------------------------------------------------------------------------


async def test_supervisor_reviews_compares_and_merges_in_the_browser(
    supervisor: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    pair_id, old, new = await make_pair_with_history(people)
    listing = await supervisor.get("/duplicates")
    assert listing.status_code == 200
    assert "云南华信勘测设计有限责任公司" in listing.text and f"/duplicates/pairs/{pair_id}" in listing.text
    page = await supervisor.get(f"/duplicates/pairs/{pair_id}")
    assert page.status_code == 200
    assert f'name="pick_email" value="{new}" checked' in page.text
    assert 'name="pick_needs" value="both"' in page.text
    response = await supervisor.post(
        f"/duplicates/pairs/{pair_id}/merge", data={"survivor": str(old), "pick_name": str(new)}, follow_redirects=False
    )
    assert response.status_code == 303
    assert (await Customer.select(Customer.name).where(Customer.id == old).first())[
        "name"
    ] == "云南华信勘测设计有限责任公司"
    merges = await supervisor.get("/duplicates/merges")
    merge_id = (await CustomerMerge.select(CustomerMerge.id).first())["id"]
    assert f"/duplicates/merges/{merge_id}/undo" in merges.text
    undone = await supervisor.post(f"/duplicates/merges/{merge_id}/undo", follow_redirects=False)
    assert undone.status_code == 303
    again = await supervisor.post(f"/duplicates/merges/{merge_id}/undo", follow_redirects=False)
    assert again.status_code == 404


async def test_a_refused_merge_shows_the_form_again_with_the_choices_made(
    supervisor: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    pair_id, old, new = await make_pair_with_history(people)
    response = await supervisor.post(
        f"/duplicates/pairs/{pair_id}/merge",
        data={"survivor": str(new), "pick_name": "nonsense", "pick_place": str(old)},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    assert f'name="survivor" value="{new}" checked' in response.text
    assert f'name="pick_place" value="{old}" checked' in response.text
    assert 'class="field-error"' in response.text
    assert (await Customer.select(Customer.deleted_at).where(Customer.id == old).first())["deleted_at"] is None


async def test_undoing_a_merge_whose_survivor_was_deleted_is_refused_with_a_message(
    supervisor: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    zhang = people["zhangwei"]
    pair_id, old, _new = await make_pair_with_history(people)
    merge_id = await service.merge(zhang, pair_id, {"survivor": str(old)})
    await customers.soft_delete(zhang, old)
    response = await supervisor.post(f"/duplicates/merges/{merge_id}/undo")
    assert response.status_code == 422
    assert "notice-error" in response.text


async def test_dismiss_from_the_list_and_scan_on_request(
    supervisor: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    first = await add(wang, "刘洋", mobile="13812345678")
    second = await add(wang, "刘洋", mobile="13812345678")
    requested = await supervisor.post("/duplicates/scan", follow_redirects=False)
    assert requested.status_code == 303
    assert (await service.scan_state()).pending
    polled = await supervisor.get("/duplicates/scan-status", headers={"HX-Request": "true"})
    assert polled.status_code == 204
    assert await service.scan_if_due() is not None
    assert await service.scan_if_due() is None
    pair_id = pair_of(await pairs(), first, second)["id"]
    dismissed = await supervisor.post(
        f"/duplicates/pairs/{pair_id}/dismiss", headers={"HX-Request": "true", "HX-Target": f"pair-{pair_id}"}
    )
    assert dismissed.status_code == 200 and dismissed.text == ""
    assert "刘洋" in (await supervisor.get("/duplicates?tab=dismissed")).text
    link = await supervisor.get(f"/duplicates/customer/{first}")
    assert link.text.strip() == ""


async def test_the_customer_page_links_to_its_duplicates(
    supervisor: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    first = await add(wang, "刘洋", mobile="13812345678")
    await add(wang, "刘洋", mobile="13812345678")
    await finder.scan()
    page = await supervisor.get(f"/customers/{first}")
    assert f"/duplicates/customer/{first}" in page.text
    link = await supervisor.get(f"/duplicates/customer/{first}")
    assert f"/duplicates?customer={first}" in link.text
    listing = await supervisor.get(f"/duplicates?customer={first}&reason=mobile")
    assert text_of(listing.text).count("刘洋") >= 2
    assert 'href="/duplicates?reason=mobile"' in listing.text


async def test_customer_text_is_escaped_on_every_page(
    supervisor: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    first = await add(wang, "<script>alert(1)</script>", mobile="13812345678", needs="<b>x</b>")
    await add(wang, "<img src=x onerror=alert(1)>", mobile="13812345678")
    await finder.scan()
    pair_id = pair_of(await pairs(), first, first + 1)["id"]
    for url in ("/duplicates", f"/duplicates/pairs/{pair_id}"):
        text = (await supervisor.get(url)).text
        assert "<script>alert" not in text and "<img src=x" not in text and "<b>x</b>" not in text


async def test_staff_get_404_everywhere_and_the_nav_has_no_link(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    pair_id, old, _new = await make_pair_with_history(people)
    for method, url in (
        ("GET", "/duplicates"),
        ("GET", f"/duplicates/pairs/{pair_id}"),
        ("POST", f"/duplicates/pairs/{pair_id}/merge"),
        ("POST", f"/duplicates/pairs/{pair_id}/dismiss"),
        ("GET", "/duplicates/merges"),
        ("POST", "/duplicates/scan"),
        ("GET", f"/duplicates/customer/{old}"),
    ):
        response = await staff.request(method, url, data={"survivor": str(old)})
        assert response.status_code == 404, (method, url)
    assert 'href="/duplicates"' not in (await staff.get("/customers")).text
    assert "/duplicates/customer/" not in (await staff.get(f"/customers/{old}")).text
    assert (await Customer.count().where(Customer.deleted_at.is_not_null())) == 0


async def test_anonymous_visitors_go_to_login(anonymous: AsyncTestClient) -> None:
    response = await anonymous.get("/duplicates", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


async def test_posts_without_csrf_token_are_refused(
    supervisor: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    pair_id, old, _new = await make_pair_with_history(people)
    del supervisor.headers["x-csrftoken"]
    for url in (f"/duplicates/pairs/{pair_id}/merge", f"/duplicates/pairs/{pair_id}/dismiss", "/duplicates/scan"):
        response = await supervisor.post(url, data={"survivor": str(old)}, follow_redirects=False)
        assert response.status_code == 403, url
    assert (await Customer.count().where(Customer.deleted_at.is_not_null())) == 0


async def test_bad_ids_and_parameters_are_4xx_never_500(supervisor: AsyncTestClient) -> None:
    for method, url in (
        ("GET", "/duplicates/pairs/999999"),
        ("GET", "/duplicates/pairs/abc"),
        ("GET", "/duplicates/pairs/99999999999999999999"),
        ("GET", "/duplicates/pairs/0"),
        ("POST", "/duplicates/pairs/999999/merge"),
        ("POST", "/duplicates/pairs/999999/dismiss"),
        ("POST", "/duplicates/merges/999999/undo"),
        ("GET", "/duplicates?tab=nonsense"),
        ("GET", "/duplicates?page=abc"),
        ("GET", "/duplicates?customer=-1"),
        ("GET", "/duplicates?reason=" + "x" * 100),
        ("GET", "/duplicates/customer/99999999999999"),
    ):
        response = await supervisor.request(method, url)
        assert 400 <= response.status_code < 500, (method, url, response.status_code)
    assert (await supervisor.get("/duplicates/pairs/999999")).status_code == 404


async def test_moved_contacts_projects_and_feedback_are_the_survivors_in_its_pages(
    supervisor: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    zhang = people["zhangwei"]
    pair_id, old, new = await make_pair_with_history(people)
    await service.merge(zhang, pair_id, {"survivor": str(old)})
    html = (await supervisor.get(f"/customers/{old}")).text
    page = text_of(html)
    assert "陈静" in page and "房屋安全鉴定" in page
    # The history lists the merge with the fields it changed.
    assert "<ins>info@huaxin.cn</ins>" in html[html.index('id="history"') :]
    assert (await supervisor.get(f"/customers/{new}")).status_code == 404
    assert await Contact.count().where(Contact.customer == new) == 0
    assert await Project.count().where(Project.customer == old) == 2
    assert await FollowUp.count().where(FollowUp.customer == old) == 1
    assert await Feedback.count().where(Feedback.customer == old) == 1
