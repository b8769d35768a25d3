"""The search box in every page's header: the dropdown grouped into customers, follow-ups and feedback, the search
page, the permission scope, the database fallback while Meilisearch is down, and the admin's search status page."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from litestar.testing import AsyncTestClient

from app.accounts.service import CurrentUser
from app.core.tables import SearchOutbox
from app.customers import service as customers
from app.customers.tables import Customer
from app.feedback import service as feedback
from app.followups import service as followups
from app.i18n import _, format_datetime
from search import engine as meili
from tests.conftest import Search, text_of

pytestmark = pytest.mark.db

DROPDOWN = {"HX-Request": "true", "HX-Target": "topsearch-results"}
PAGE_RESULTS = {"HX-Request": "true", "HX-Target": "search-results"}
UNAVAILABLE = "Search is unavailable; showing name, company and phone matches from the database only."


async def make_customer(owner: CurrentUser, name: str, **fields: str) -> int:
    data = {"name": name, "origin": "own", "province": "云南省", "city": "昆明市", **fields}
    return await customers.create_customer(owner, {**data, "confirm_duplicates": "1"})


async def put_in_pool(customer_id: int) -> None:
    await Customer.update({Customer.owner: None}).where(Customer.id == customer_id)
    await customers.touch(customer_id)


async def dropdown(client: AsyncTestClient, q: str) -> str:
    response = await client.get("/search", params={"q": q}, headers=DROPDOWN)
    assert response.status_code == 200, response.text
    assert "<html" not in response.text
    return response.text


# -- the dropdown --------------------------------------------------------------------------------------------


async def test_the_dropdown_groups_customers_follow_ups_and_feedback_with_the_matches_marked(
    search: Search, staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    customer_id = await make_customer(wang, "玉溪踏勘设计院")
    followup_id = await followups.add_followup(wang, customer_id, {"content": "约了下周去现场踏勘", "happened_at": ""})
    feedback_id = await feedback.submit_feedback(
        content="踏勘报告交付很及时", rating=5, customer_id=customer_id, actor=wang
    )
    await search.sync()

    html = await dropdown(staff, "踏勘")

    text = text_of(html)
    positions = [text.index(title) for title in (_("Customers"), _("Follow-ups"), _("Feedback"))]
    assert positions == sorted(positions)
    assert "<mark>踏勘</mark>" in html
    assert f'href="/customers/{customer_id}"' in html
    assert f'href="/customers/{customer_id}#followup-{followup_id}"' in html
    assert f'href="/feedback/{feedback_id}"' in html
    assert 'role="listbox"' in html and html.count('role="option"') == 4
    assert f'href="/search?q={quote("踏勘")}"' in html and _("Show all results") in text


async def test_an_empty_query_asks_nothing_and_closes_the_dropdown(staff: AsyncTestClient) -> None:
    assert (await dropdown(staff, "   ")).strip() == ""
    assert (await staff.get("/search", headers=DROPDOWN)).text.strip() == ""


async def test_a_query_that_finds_nothing_says_so(search: Search, staff: AsyncTestClient) -> None:
    assert _("Nothing found for “%(query)s”.", query="不存在的客户") in text_of(await dropdown(staff, "不存在的客户"))


async def test_a_customer_named_like_a_script_is_shown_as_text(
    search: Search, staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    await make_customer(people["wangfang"], "<script>alert(1)</script>")
    await search.sync()
    for query in ("script", "<script>"):
        html = await dropdown(staff, query)
        assert "<script>" not in html and "&lt;script&gt;" in html, query
    page = await staff.get("/search", params={"q": "script"})
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text


async def test_a_customer_named_like_a_script_is_shown_as_text_from_the_database_too(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    await make_customer(people["wangfang"], "<script>alert(1)</script>")
    html = await dropdown(staff, "<script>")
    assert "<script>" not in html and "&lt;script&gt;" in html


# -- scope -----------------------------------------------------------------------------------------------------


async def test_staff_never_find_a_colleagues_customer_but_do_find_the_public_pool(
    search: Search, staff: AsyncTestClient, other_staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    li = people["liqiang"]
    private = await make_customer(li, "昆明铜业李强的客户")
    await followups.add_followup(li, private, {"content": "昆明铜业要报价", "happened_at": ""})
    pooled = await make_customer(li, "昆明铜业公共池客户")
    await put_in_pool(pooled)
    await search.sync()

    html = await dropdown(staff, "昆明铜业")
    assert f'href="/customers/{pooled}"' in html
    assert f"/customers/{private}" not in html and "李强的客户" not in html
    page = await staff.get("/search", params={"q": "报价"})
    assert f"/customers/{private}" not in page.text

    theirs = await dropdown(other_staff, "昆明铜业")
    assert f'href="/customers/{pooled}"' in theirs and f'href="/customers/{private}"' in theirs


# -- the search page -------------------------------------------------------------------------------------------


async def test_the_search_page_works_without_javascript(
    search: Search, staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    customer_id = await make_customer(people["wangfang"], "曲靖宏达矿业有限公司")
    await search.sync()

    response = await staff.get("/search", params={"q": "宏达"})

    assert response.status_code == 200
    assert "<html" in response.text and 'action="/search"' in response.text
    assert f'href="/customers/{customer_id}"' in response.text and "<mark>宏达</mark>" in response.text
    assert 'value="宏达"' in response.text
    assert 'role="option"' not in response.text
    empty = await staff.get("/search")
    assert empty.status_code == 200 and "<html" in empty.text


async def test_the_search_page_updates_its_results_and_the_address_bar(
    search: Search, staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    await make_customer(people["wangfang"], "曲靖宏达矿业有限公司")
    await search.sync()

    response = await staff.get("/search", params={"q": "宏达"}, headers=PAGE_RESULTS)

    assert "<html" not in response.text and "<mark>宏达</mark>" in response.text
    assert response.headers["hx-push-url"] == f"/search?q={quote('宏达')}"


async def test_every_intranet_page_has_the_search_box(staff: AsyncTestClient, anonymous: AsyncTestClient) -> None:
    page = (await staff.get("/customers")).text
    assert 'id="topsearch-input"' in page and 'role="combobox"' in page and 'hx-get="/search"' in page
    assert "topsearch-input" not in (await anonymous.get("/login")).text


async def test_anonymous_visitors_are_sent_to_login(anonymous: AsyncTestClient) -> None:
    for url in ("/search?q=x", "/admin/search"):
        response = await anonymous.get(url, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next="), url


# -- Meilisearch down -----------------------------------------------------------------------------------------


async def test_while_meilisearch_is_down_names_and_phone_digits_are_found_in_the_database(
    search: Search, staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang, li = people["wangfang"], people["liqiang"]
    mobile = await make_customer(wang, "王建国", mobile="138 1234 5678", company="昆明市规划设计研究院")
    landline = await make_customer(wang, "曾小明", phone="0871-6512 3456")
    await make_customer(li, "王建国的同名客户")
    discount = await make_customer(wang, "九折_优惠100%客户")
    await search.sync()
    search.process.stop()
    try:
        html = await dropdown(staff, "王建国")
        assert _(UNAVAILABLE) in text_of(html)
        assert f'href="/customers/{mobile}"' in html and "同名" not in html
        assert f'href="/customers/{mobile}"' in await dropdown(staff, "规划设计")
        by_mobile = await dropdown(staff, "5678")
        assert f'href="/customers/{mobile}"' in by_mobile and "<mark>" in by_mobile
        assert f'href="/customers/{landline}"' in await dropdown(staff, "65123456")
        for literal in ("%", "_", "100%"):
            found = await dropdown(staff, literal)
            assert f'href="/customers/{discount}"' in found and f"/customers/{mobile}" not in found, literal
        page = await staff.get("/search", params={"q": "王建国"})
        assert page.status_code == 200 and _(UNAVAILABLE) in text_of(page.text)
    finally:
        search.process.start()
        meili.mark_up()


# -- odd input ----------------------------------------------------------------------------------------------------

ODD_QUERIES = ["x" * 20_000, "\x00\x01\x1f王", "%", "_", "%_%", "\\", "' OR 1=1 --", '"', "{}", "🙂", "+86", "0" * 150]


async def _never_500(client: AsyncTestClient) -> None:
    for q in ODD_QUERIES:
        for headers in (DROPDOWN, PAGE_RESULTS, {}):
            response = await client.get("/search", params={"q": q}, headers=headers)
            assert response.status_code == 200, (q[:20], headers, response.status_code)
    repeated = await client.get("/search?q=a&q=b")
    assert repeated.status_code == 200


async def test_odd_input_never_fails_with_search(search: Search, staff: AsyncTestClient) -> None:
    await _never_500(staff)


async def test_odd_input_never_fails_from_the_database(staff: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    await make_customer(people["wangfang"], "王建国")
    await _never_500(staff)


async def test_a_long_query_is_cut_to_a_hundred_characters(staff: AsyncTestClient) -> None:
    page = await staff.get("/search", params={"q": "测" * 500})
    assert 'value="' + "测" * 100 + '"' in page.text


# -- the admin's status page -----------------------------------------------------------------------------------


async def test_only_admins_see_the_search_status(staff: AsyncTestClient, supervisor: AsyncTestClient) -> None:
    assert (await staff.get("/admin/search")).status_code == 403
    assert (await supervisor.get("/admin/search")).status_code == 403


async def test_the_search_status_compares_documents_with_the_database(
    search: Search, admin: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    for name in ("玉溪测绘院", "曲靖矿业"):
        await make_customer(wang, name)
    await search.sync()

    text = text_of((await admin.get("/admin/search")).text)
    assert _("Reachable") in text and _("In step") in text and _("Behind") not in text
    assert f"{_('Customers')} 2 2 {_('In step')}" in text

    await make_customer(wang, "昆明规划院")
    oldest = await SearchOutbox.select(SearchOutbox.created_at).order_by(SearchOutbox.id).first()
    text = text_of((await admin.get("/admin/search")).text)
    assert f"{_('Customers')} 3 2 {_('Behind')}" in text
    assert format_datetime(oldest["created_at"]) in text


async def test_the_search_status_shows_when_meilisearch_is_unreachable(search: Search, admin: AsyncTestClient) -> None:
    search.process.stop()
    try:
        text = text_of((await admin.get("/admin/search")).text)
        assert _("Unreachable") in text and _("Connecting to Meilisearch") in text
    finally:
        search.process.start()
        meili.mark_up()


async def test_the_search_status_shows_an_index_not_built_yet(search: Search, admin: AsyncTestClient) -> None:
    meili.delete_index(meili.uid("customers"))
    text = text_of((await admin.get("/admin/search")).text)
    assert f"{_('Customers')} 0 — {_('Not built yet')}" in text and _("Reachable") in text


async def test_the_admin_pages_link_to_the_search_status(admin: AsyncTestClient) -> None:
    for url in ("/admin/users", "/admin/options"):
        assert 'href="/admin/search"' in (await admin.get(url)).text, url
