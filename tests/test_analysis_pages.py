"""Customer analysis pages (客户分析): who may open them, every view with and without filters, the filter bar's
fragment, row links that keep the filters, CSV and XLSX exports, the ad spend form on the channels view and the
tier settings with "recompute now" on the value view. The figures themselves are checked in the service's tests."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import openpyxl
import pytest
from litestar.testing import AsyncTestClient

from app import exports
from app.accounts.service import CurrentUser
from app.analysis import service
from app.analysis.report import AnalysisFilters, Column
from app.customers import service as customers
from app.options.tables import OptionItem
from tests.conftest import text_of

pytestmark = pytest.mark.db

FILTERED = "start=2020-01-01&end=2099-12-31&owner=pool&province=云南省&origin=own"
MALFORMED = "start=2024-13-45&end=yesterday&owner=abc&province=<script>&channel=-1&origin=everyone"


def htmx(target: str) -> dict[str, str]:
    return {"HX-Request": "true", "HX-Target": target}


async def channel_id(label: str) -> int:
    row = await OptionItem.select(OptionItem.id).where(OptionItem.label == label).first()
    assert row is not None
    return row["id"]


@pytest.fixture
async def scene(people: dict[str, CurrentUser]) -> dict[str, Any]:
    """王芳's customers from the trade fair and the website, one of them a member with two projects, and a prospect
    in the public pool whose name a spreadsheet would run as a formula."""
    wang = people["wangfang"]
    fair, website = await channel_id("展会"), await channel_id("网站在线咨询")
    member = await customers.create_customer(
        wang,
        {
            "name": "昆明华信勘测设计有限公司",
            "origin": "own",
            "kind": "member",
            "mobile": "138 8712 3456",
            "province": "云南省",
            "city": "昆明市",
            "source_channel": str(fair),
        },
    )
    for name, amount in (("滇池流域地形测绘", "38万"), ("呈贡新区控制测量", "120000")):
        await customers.add_project(
            wang, member, {"name": name, "amount": amount, "status": "completed", "signed_on": "2025-03-15"}
        )
    prospect = await customers.create_customer(
        wang,
        {
            "name": "曲靖宏达矿业有限公司",
            "origin": "external",
            "mobile": "139 0874 5566",
            "province": "云南省",
            "city": "曲靖市",
            "source_channel": str(website),
        },
    )
    formula = await customers.create_customer(
        wang,
        {
            "name": '=HYPERLINK("http://evil.example","点我")',
            "origin": "own",
            "kind": "member",
            "mobile": "137 6688 9900",
            "province": "广东省",
            "city": "广州市",
            "source_channel": str(website),
            "to_pool": "1",
        },
    )
    await customers.add_project(wang, formula, {"name": "南沙港区测绘", "amount": "5万", "status": "completed"})
    return {"member": member, "prospect": prospect, "formula": formula, "fair": fair, "website": website}


def view_urls() -> list[str]:
    return ["/analysis", *(f"/analysis/{key}" for key in service.VIEWS)]


def row_links(html: str) -> list[str]:
    return [unquote(link).replace("&amp;", "&") for link in re.findall(r'<td[^>]*><a href="(/customers\?[^"]*)"', html)]


# -- access -------------------------------------------------------------------------------------------------


async def test_staff_get_403_on_every_analysis_url(staff: AsyncTestClient, scene: dict[str, Any]) -> None:
    for url in [*view_urls(), "/analysis/channels/by_channel.csv", "/analysis/tier-status"]:
        response = await staff.get(url)
        assert response.status_code == 403, url
    for url in [
        "/analysis/ad-spend",
        "/analysis/ad-spend/1/delete",
        "/analysis/tiers",
        "/analysis/recompute",
    ]:
        response = await staff.post(url, data={"month": "2025-03", "channel": str(scene["fair"]), "amount": "1万"})
        assert response.status_code == 403, url
    assert await service.ad_spend_entries(AnalysisFilters()) == []
    page = await staff.get("/customers")
    assert 'href="/analysis"' not in page.text


async def test_anonymous_visitors_are_sent_to_the_login_page(anonymous: AsyncTestClient) -> None:
    for url in ["/analysis", "/analysis/value", "/analysis/channels/by_channel.xlsx"]:
        response = await anonymous.get(url, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


async def test_supervisors_and_admins_open_every_view_with_any_filters(
    supervisor: AsyncTestClient, admin: AsyncTestClient, scene: dict[str, Any]
) -> None:
    home = await supervisor.get("/customers")
    assert 'href="/analysis"' in home.text
    for client in (supervisor, admin):
        for url in view_urls():
            for query in ("", FILTERED, MALFORMED, f"channel={scene['fair']}"):
                response = await client.get(f"{url}?{query}")
                assert response.status_code == 200, (url, query)
                assert 'id="analysis-body"' in response.text
                assert 'id="analysis-filters"' in response.text


async def test_an_unknown_view_table_or_file_type_is_404(supervisor: AsyncTestClient, scene: dict[str, Any]) -> None:
    channels = await service.build_view("channels", AnalysisFilters())
    table = channels.tables[0].key
    for url in [
        "/analysis/nonsense",
        "/analysis/nonsense/by_channel.csv",
        "/analysis/channels/nonsense.csv",
        f"/analysis/channels/{table}.pdf",
        f"/analysis/channels/{table}",
    ]:
        response = await supervisor.get(url)
        assert response.status_code == 404, url


async def test_a_view_without_data_says_so_and_draws_no_chart(
    supervisor: AsyncTestClient, scene: dict[str, Any]
) -> None:
    response = await supervisor.get("/analysis/channels?start=2001-01-01&end=2001-01-31")
    assert response.status_code == 200
    assert "<canvas" not in response.text
    assert "没有数据" in text_of(response.text) or "No data for these filters." in response.text


# -- the page -----------------------------------------------------------------------------------------------


async def test_tabs_charts_and_row_links_keep_the_filters(supervisor: AsyncTestClient, scene: dict[str, Any]) -> None:
    response = await supervisor.get("/analysis/channels?province=云南省&origin=own")
    assert response.status_code == 200
    html = response.text
    # Each tab keeps the filters; the chart library is named but not loaded until a chart needs it.
    tabs = re.findall(r'<nav class="tabs analysis-tabs".*?</nav>', html, re.S)[0]
    assert tabs.count("origin=own") == len(service.VIEWS)
    assert "/static/vendor/chart-" in html and "<canvas" in html
    assert '<canvas data-chart=\'{"kind": ' in html
    links = row_links(html)
    assert links
    for link in links:
        query = parse_qs(urlsplit(link).query)
        assert query["province"] == ["云南省"] and query["origin"] == ["own"], link
    # Export links carry the same filters and are plain downloads, not htmx swaps.
    assert re.search(r'href="/analysis/channels/\w+\.csv\?province=%E4%BA%91%E5%8D%97%E7%9C%81&amp;origin=own"', html)
    assert 'hx-boost="false" download' in html


async def test_the_filter_bar_gets_only_the_body_and_a_clean_url(
    supervisor: AsyncTestClient, scene: dict[str, Any]
) -> None:
    response = await supervisor.get(
        "/analysis/regions?start=&end=&owner=&province=云南省&channel=&origin=", headers=htmx("analysis-body")
    )
    assert response.status_code == 200
    assert "<html" not in response.text and 'id="analysis-filters"' not in response.text
    assert response.text.lstrip().startswith('<div id="analysis-body"')
    assert unquote(response.headers["HX-Push-Url"]) == "/analysis/regions?province=云南省"
    # A boosted navigation is a whole page.
    boosted = await supervisor.get("/analysis/regions", headers={**htmx("analysis-body"), "HX-Boosted": "true"})
    assert "<html" in boosted.text


async def test_chart_data_is_json_that_cannot_break_out_of_its_script(
    supervisor: AsyncTestClient, people: dict[str, CurrentUser], scene: dict[str, Any]
) -> None:
    await customers.create_customer(
        people["zhangwei"],
        {"name": "</script><script>alert(1)</script>", "origin": "own", "kind": "member", "mobile": "136 0000 1111"},
    )
    for key in service.VIEWS:
        response = await supervisor.get(f"/analysis/{key}")
        assert "<script>alert(1)" not in response.text, key


# -- exports ------------------------------------------------------------------------------------------------


async def test_csv_export_opens_in_excel_and_matches_the_table(
    supervisor: AsyncTestClient, scene: dict[str, Any]
) -> None:
    view = await service.build_view("channels", AnalysisFilters(province="云南省"))
    table = next(table for table in view.tables if table.rows)
    response = await supervisor.get(f"/analysis/channels/{table.key}.csv?province=云南省")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and f"kehu-channels-{table.key}-" in disposition
    assert "filename*=UTF-8''" in disposition and unquote(disposition.split("''")[1]).startswith(view.title)
    assert response.content.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in response.content
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))
    assert lines[0] == [column.label for column in table.columns]
    assert len(lines) == len(table.rows) + 1


async def test_xlsx_export_has_the_same_rows_as_the_table(supervisor: AsyncTestClient, scene: dict[str, Any]) -> None:
    for key in service.VIEWS:
        view = await service.build_view(key, AnalysisFilters())
        for table in view.tables:
            response = await supervisor.get(f"/analysis/{key}/{table.key}.xlsx")
            assert response.status_code == 200, (key, table.key)
            assert response.headers["content-type"] == exports.XLSX_TYPE
            sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
            rows = list(sheet.iter_rows(values_only=True))
            assert list(rows[0]) == [column.label for column in table.columns]
            assert len(rows) == len(table.rows) + 1, (key, table.key)
            for index, column in enumerate(table.columns):
                expected = [as_in_a_spreadsheet(row.cells.get(column.key), column.kind) for row in table.rows]
                assert [line[index] for line in rows[1:]] == expected, (key, table.key, column.key)


def as_in_a_spreadsheet(value: Any, kind: str) -> Any:
    """What openpyxl reads back for a cell of the table: money in yuan, dates as midnight."""
    if value is None or value == "":
        return None
    if kind == "money":
        return pytest.approx(value / 100)
    if kind == "date":
        return datetime.combine(value, datetime.min.time())
    if isinstance(value, float):
        return pytest.approx(value)
    return value


def test_csv_neutralises_formulas_and_keeps_numbers_numbers() -> None:
    columns = [
        Column("name", "客户"),
        Column("revenue", "收入", "money"),
        Column("share", "占比", "percent"),
        Column("count", "客户数", "count"),
    ]
    rows = [
        {"name": "=1+2", "revenue": 38_000_000, "share": 0.8, "count": 12},
        {"name": "+86 138", "revenue": 5, "share": 0.125, "count": 0},
        {"name": "-2", "revenue": None, "share": None, "count": None},
        {"name": "@SUM(A1)", "revenue": 0, "share": 0.0, "count": 1},
        {"name": "\tcmd", "revenue": 0, "share": 0.0, "count": 1},
        {"name": "昆明华信", "revenue": 0, "share": 0.0, "count": 1},
    ]
    content = exports.csv_bytes(columns, rows)
    assert content.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    assert lines[0] == ["客户", "收入", "占比", "客户数"]
    assert lines[1] == ["'=1+2", "380000.00", "80.0%", "12"]
    assert lines[2] == ["'+86 138", "0.05", "12.5%", "0"]
    assert lines[3] == ["'-2", "", "", ""]
    assert [line[0] for line in lines[4:]] == ["'@SUM(A1)", "'\tcmd", "昆明华信"]


def test_xlsx_keeps_text_as_text_and_formats_numbers() -> None:
    columns = [Column("name", "客户"), Column("revenue", "收入", "money"), Column("share", "占比", "percent")]
    content = exports.xlsx_bytes("客户价值: 前 20%", columns, [{"name": "=1+2", "revenue": 12_345, "share": 0.25}])
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    assert sheet.title == "客户价值_ 前 20%"
    assert sheet["A1"].value == "客户" and sheet["A1"].font.b
    assert sheet["A2"].value == "=1+2" and sheet["A2"].data_type == "s"
    assert float(sheet["B2"].value) == 123.45 and sheet["B2"].number_format == "#,##0.00"
    assert sheet["C2"].value == 0.25 and sheet["C2"].number_format == "0.0%"


# -- ad spend (channels view) -------------------------------------------------------------------------------


async def test_ad_spend_is_entered_replaced_and_deleted(supervisor: AsyncTestClient, scene: dict[str, Any]) -> None:
    form = {"month": "2025-03", "channel": str(scene["fair"]), "amount": "1.2万"}
    response = await supervisor.post("/analysis/ad-spend?origin=own", data=form, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/analysis/channels?origin=own#ad-spend"
    response = await supervisor.post("/analysis/ad-spend", data={**form, "amount": "¥15,000"}, follow_redirects=False)
    assert response.status_code == 303
    entries = await service.ad_spend_entries(AnalysisFilters())
    assert [(entry["month"].isoformat(), entry["amount_fen"]) for entry in entries] == [("2025-03-01", 1_500_000)]
    page = await supervisor.get("/analysis/channels")
    assert "¥15,000.00" in text_of(page.text)

    response = await supervisor.post(f"/analysis/ad-spend/{entries[0]['id']}/delete?origin=own", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].endswith("#ad-spend")
    assert await service.ad_spend_entries(AnalysisFilters()) == []


async def test_a_refused_ad_spend_keeps_the_input_and_says_why_beside_each_field(
    supervisor: AsyncTestClient, scene: dict[str, Any]
) -> None:
    response = await supervisor.post(
        "/analysis/ad-spend?province=云南省", data={"month": "2025-13", "channel": "", "amount": "很多钱"}
    )
    assert response.status_code == 422
    html = response.text
    assert 'value="2025-13"' in html and 'value="很多钱"' in html
    for field in ("month", "channel", "amount"):
        assert f'aria-describedby="ad-spend-{field}-error"' in html, field
        assert f'id="ad-spend-{field}-error"' in html, field
    # The page around the form still shows the view under its filters.
    assert 'action="/analysis/ad-spend?province=%E4%BA%91%E5%8D%97%E7%9C%81"' in html
    assert await service.ad_spend_entries(AnalysisFilters()) == []

    # Posted by the boosted form, the refusal leaves the view's address in the address bar, so a reload reloads it
    # (the post address answers GET with 405).
    boosted = await supervisor.post(
        "/analysis/ad-spend?province=云南省",
        data={"month": "2025-13", "channel": "", "amount": ""},
        headers={"HX-Request": "true", "HX-Boosted": "true"},
    )
    assert boosted.status_code == 422
    assert boosted.headers["HX-Push-Url"] == "false"


# -- tiers (value view) -------------------------------------------------------------------------------------


async def test_tier_thresholds_are_saved_or_refused_with_messages(
    supervisor: AsyncTestClient, scene: dict[str, Any]
) -> None:
    response = await supervisor.post("/analysis/tiers", data={"a_share": "70", "b_share": "20"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/analysis/value#tiers"
    settings = await service.tier_settings()
    assert (settings.a_share, settings.b_share) == (70, 20)

    response = await supervisor.post("/analysis/tiers", data={"a_share": "八十", "b_share": "95"})
    assert response.status_code == 422
    assert 'value="八十"' in response.text and 'value="95"' in response.text
    assert 'id="tiers-a_share-error"' in response.text
    settings = await service.tier_settings()
    assert (settings.a_share, settings.b_share) == (70, 20)


async def test_recompute_now_polls_until_the_worker_is_done(supervisor: AsyncTestClient, scene: dict[str, Any]) -> None:
    page = await supervisor.get("/analysis/value")
    assert 'hx-trigger="every 2s"' not in page.text

    response = await supervisor.post("/analysis/recompute", headers=htmx("tier-status"))
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<p id="tier-status"')
    assert 'hx-trigger="every 2s"' in response.text
    poll = await supervisor.get("/analysis/tier-status", headers=htmx("tier-status"))
    assert poll.status_code == 204

    await service.recompute_tiers()
    done = await supervisor.get("/analysis/tier-status", headers=htmx("tier-status"))
    assert done.status_code == 200
    assert 'hx-trigger="every 2s"' not in done.text

    plain = await supervisor.post("/analysis/recompute?owner=pool", follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == "/analysis/value?owner=pool#tiers"


async def test_analysis_forms_need_the_csrf_token(supervisor: AsyncTestClient, scene: dict[str, Any]) -> None:
    del supervisor.headers["x-csrftoken"]
    for url in ["/analysis/ad-spend", "/analysis/tiers", "/analysis/recompute"]:
        response = await supervisor.post(url, data={"a_share": "60", "b_share": "30"})
        assert response.status_code == 403, url
    assert (await service.tier_settings()).a_share == 80
