"""Taking a customer list out to a spreadsheet: the rows of the list view in the user's scope, the chosen
columns, CSV that Excel reads and XLSX, with formula-looking cells made harmless."""

from __future__ import annotations

import csv
import io

import pytest
from litestar.testing import AsyncTestClient
from openpyxl import load_workbook

from app import db
from app.accounts.service import CurrentUser
from app.customers import service
from app.customers.tables import Customer
from app.followups import service as followups
from tests.conftest import Search

pytestmark = pytest.mark.db


async def _customer(owner: CurrentUser, **fields: str) -> int:
    return await service.create_customer(owner, {"origin": "own", "province": "云南省", "city": "昆明市", **fields})


def _csv(content: bytes) -> list[list[str]]:
    assert content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


async def test_the_form_offers_the_columns_and_keeps_the_lists_filters(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    await _customer(people["wangfang"], name="曲靖宏达矿业有限公司")
    page = await staff.get("/customers/export?kind=member&province=云南省&sort=name")
    assert page.status_code == 200
    assert 'name="province" value="云南省"' in page.text and 'name="sort" value="name"' in page.text
    assert 'value="mobile" checked' in page.text and 'value="needs">' in page.text
    listed = await staff.get("/customers?province=云南省")
    assert "/customers/export?kind=prospect&amp;province=%E4%BA%91%E5%8D%97%E7%9C%81" in listed.text


async def test_a_staff_members_export_holds_their_list_and_nothing_else(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang, li = people["wangfang"], people["liqiang"]
    await _customer(wang, name="曲靖宏达矿业有限公司", mobile="13987654321", company='=HYPERLINK("http://x")')
    await _customer(wang, name="玉溪市自然资源局", province="广东省", city="广州市")
    await _customer(li, name="李强的私人客户")
    await _customer(wang, name="已是会员的客户", kind="member")

    response = await staff.get(
        "/customers/export?format=csv&province=云南省&columns=name&columns=company&columns=mobile"
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    rows = _csv(response.content)
    assert rows[0] == ["名称", "单位", "手机"]
    assert rows[1:] == [["曲靖宏达矿业有限公司", '\'=HYPERLINK("http://x")', "13987654321"]]

    everything = _csv((await staff.get("/customers/export?format=csv&columns=name")).content)
    assert sorted(row[0] for row in everything[1:]) == ["曲靖宏达矿业有限公司", "玉溪市自然资源局"]


async def test_xlsx_has_the_default_columns_and_every_row_of_the_tab(
    supervisor: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    for number in range(3):
        await _customer(people["wangfang"], name=f"大理州第{number}测绘院", kind="member")
    await _customer(people["liqiang"], name="楚雄州林业和草原局", kind="member")
    await Customer.update({Customer.revenue_fen: 1234567}).where(Customer.name == "楚雄州林业和草原局")

    response = await supervisor.get("/customers/export?format=xlsx&kind=member&sort=name")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0][:3] == ["名称", "单位", "手机"] and "负责人" in values[0]
    assert len(values) == 5
    owners = {row[0]: row[values[0].index("负责人")] for row in values[1:]}
    assert owners["楚雄州林业和草原局"] == "李强"

    money = await supervisor.get("/customers/export?format=xlsx&kind=member&columns=name&columns=revenue")
    sheet = load_workbook(io.BytesIO(money.content)).active
    amounts = {row[0].value: row[1].value for row in list(sheet.iter_rows())[1:]}
    assert float(amounts["楚雄州林业和草原局"]) == 12345.67


@pytest.mark.parametrize("query", ["format=pdf", "format=csv&columns=nonsense", "format=csv&page=abc&owner=x1"])
async def test_unknown_formats_and_columns_are_not_errors(staff: AsyncTestClient, query: str) -> None:
    response = await staff.get(f"/customers/export?{query}")
    assert response.status_code == 200


async def test_a_text_query_exports_what_search_finds_in_the_users_scope(
    search: Search, staff: AsyncTestClient, people: dict[str, CurrentUser], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pinyin finds the Chinese names as in the list; a colleague's private customer stays out. The rows are read
    by id a few at a time (here one), as 100,000 ids would be more than a statement may carry."""
    monkeypatch.setattr(db, "IDS_PER_QUERY", 1)
    wang, li = people["wangfang"], people["liqiang"]
    await _customer(wang, name="昆明华信测绘有限公司")
    await _customer(wang, name="曲靖宏达测绘工程公司")
    await _customer(wang, name="大理苍山旅游开发有限公司")
    await _customer(li, name="昆明李强测绘私有客户")
    await search.sync()

    rows = _csv((await staff.get("/customers/export?format=csv&q=cehui&sort=name&columns=name")).content)
    assert sorted(row[0] for row in rows[1:]) == ["昆明华信测绘有限公司", "曲靖宏达测绘工程公司"]


async def test_the_follow_ups_of_the_list_export_newest_first(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang, li = people["wangfang"], people["liqiang"]
    mine = await _customer(wang, name="曲靖宏达矿业有限公司")
    other = await _customer(li, name="李强的私人客户")
    for customer_id, user, when, content in [
        (mine, wang, "2026-11-02T09:30", "电话沟通矿区测量需求"),
        (mine, wang, "2026-11-20T15:00", "@SUM(A1) 上门拜访"),
        (other, li, "2026-11-10T10:00", "不该出现在王芳的导出里"),
    ]:
        await followups.add_followup(
            user, customer_id, {"content": content, "happened_at": when, "outcome": "", "next_follow_up_at": ""}
        )

    rows = _csv((await staff.get("/customers/export?format=csv&what=followups")).content)
    assert rows[0][:3] == ["客户", "时间", "跟进方式"]
    assert [(row[0], row[1][:10], row[5]) for row in rows[1:]] == [
        ("曲靖宏达矿业有限公司", "2026-11-20", "'@SUM(A1) 上门拜访"),
        ("曲靖宏达矿业有限公司", "2026-11-02", "电话沟通矿区测量需求"),
    ]
