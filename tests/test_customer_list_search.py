"""The customer list answered by search: rows, exact totals and tab counts, facet counts beside every filter value
(that follow the filters as they change), highlights, the permission scope, the notice when search is down, and
the filter sets a user saves and reopens."""

from __future__ import annotations

import re
from datetime import date, datetime
from urllib.parse import parse_qsl

import pytest
from litestar.testing import AsyncTestClient

from app.accounts.service import CurrentUser
from app.core.tables import SearchOutbox
from app.customers import service
from app.customers.service import CustomerFilters
from app.customers.tables import Customer, SavedFilter
from app.options.tables import OptionItem
from search import engine as meili
from search import sync
from search.documents import CUSTOMERS, FACET_VALUES
from tests.conftest import Search, text_of

pytestmark = pytest.mark.db

FRAGMENT = {"HX-Request": "true", "HX-Target": "customer-results"}
SAVED_FRAGMENT = {"HX-Request": "true", "HX-Target": "saved-filters"}


async def make_customer(owner: CurrentUser, name: str, **fields: str) -> int:
    data = {"name": name, "origin": "own", "province": "云南省", "city": "昆明市", **fields}
    return await service.create_customer(owner, {**data, "confirm_duplicates": "1"})


def select_options(html: str, name: str) -> dict[str, str]:
    """One filter select's options: value → the text shown (a count in brackets when there is one)."""
    found = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert found, f"no select {name}"
    return {
        value: text.strip() for value, text in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', found[1])
    }


def shown_names(html: str) -> list[str]:
    """The customer names in the list's rows, in order, without their highlights."""
    return [re.sub(r"</?mark>", "", name) for name in re.findall(r"<strong>(.*?)</strong>", html)]


def names(page: service.CustomerPage) -> list[str]:
    return [row["name"] for row in page.rows]


@pytest.fixture
async def surveyors(search: Search, people: dict[str, CurrentUser]) -> dict[str, int]:
    """Survey firms in Yunnan and Guangdong: 王芳's own, one in the public pool and one of 李强's own."""
    wang, li = people["wangfang"], people["liqiang"]
    channel = await OptionItem.select().where(OptionItem.label == "展会").first()
    ids = {
        "华信": await make_customer(wang, "昆明华信测绘有限公司", source_channel=str(channel["id"])),
        "宏达": await make_customer(wang, "曲靖宏达测绘工程公司", city="曲靖市"),
        "苍山": await make_customer(wang, "大理苍山旅游开发有限公司", city="大理白族自治州"),
        "南沙": await make_customer(wang, "广州南沙测绘有限公司", province="广东省", city="广州市"),
        "玉溪": await make_customer(wang, "玉溪测绘院", city="玉溪市", kind="member"),
        "昭通": await make_customer(li, "昭通测绘公共池客户", city="昭通市", to_pool="1"),
        "李强": await make_customer(li, "昆明李强测绘私有客户"),
    }
    await Customer.update({Customer.value_tier: "A"}).where(Customer.id == ids["华信"])
    await search.sync()
    return ids


# -- rows, totals, tabs -------------------------------------------------------------------------------------


async def test_a_text_query_and_a_filter_give_the_matching_rows_exact_total_and_tab_counts(
    surveyors: dict[str, int], people: dict[str, CurrentUser]
) -> None:
    page = await service.list_customers(people["wangfang"], CustomerFilters(q="测绘", province="云南省"))
    assert sorted(names(page)) == sorted(["昆明华信测绘有限公司", "曲靖宏达测绘工程公司", "昭通测绘公共池客户"])
    assert page.total == 3 and page.pages == 1
    assert page.counts == {"prospect": 3, "member": 1}
    assert not page.limited


async def test_sort_by_name_follows_pinyin(surveyors: dict[str, int], staff: AsyncTestClient) -> None:
    response = await staff.get("/customers?province=云南省&sort=name")
    shown = shown_names(response.text)
    # 大理 (da) · 昆明 (kun) · 曲靖 (qu) · 昭通 (zhao); by code point 昭 would come before 曲.
    assert shown == ["大理苍山旅游开发有限公司", "昆明华信测绘有限公司", "曲靖宏达测绘工程公司", "昭通测绘公共池客户"]


async def test_thirty_customers_make_two_pages_with_exact_totals(
    search: Search, staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    made = {
        await make_customer(wang, f"成都测绘客户{number:02d}号", province="四川省", city="成都市")
        for number in range(30)
    }
    await search.sync()
    first = await service.list_customers(wang, CustomerFilters(q="测绘", province="四川省", sort="name"))
    second = await service.list_customers(wang, CustomerFilters(q="测绘", province="四川省", sort="name", page=2))
    assert (first.total, first.pages, len(first.rows)) == (30, 2, service.PAGE_SIZE)
    assert (second.total, second.pages, len(second.rows)) == (30, 2, 30 - service.PAGE_SIZE)
    assert {row["id"] for row in first.rows + second.rows} == made
    assert names(first)[0] == "成都测绘客户00号" and names(second)[-1] == "成都测绘客户29号"

    response = await staff.get("/customers?q=测绘&province=四川省&sort=name&page=2")
    assert 'rel="prev"' in response.text and 'rel="next"' not in response.text
    assert "30" in text_of(response.text.split('class="pagination"')[1])


# -- facet counts -----------------------------------------------------------------------------------------


async def test_a_groups_counts_ignore_its_own_filter(surveyors: dict[str, int], staff: AsyncTestClient) -> None:
    response = await staff.get("/customers?q=测绘&province=广东省")
    assert shown_names(response.text) == ["广州南沙测绘有限公司"]
    provinces = select_options(response.text, "province")
    # 广东 is chosen, and 云南's three prospects are still counted beside it.
    assert provinces["广东省"] == "广东省 (1)"
    assert provinces["云南省"] == "云南省 (3)"
    assert provinces[""].endswith("(4)")
    assert provinces["四川省"] == "四川省 (0)"
    # The other groups count under the chosen province.
    assert select_options(response.text, "city")["广州市"] == "广州市 (1)"
    assert select_options(response.text, "tier")["A"].endswith("(0)")
    assert 'value="A" class="facet-empty"' in response.text
    exhibition = await OptionItem.select(OptionItem.id).where(OptionItem.label == "展会").first()
    assert select_options(response.text, "channel")[str(exhibition["id"])] == "展会 (0)"
    yunnan = await staff.get("/customers?q=测绘&province=云南省")
    assert select_options(yunnan.text, "channel")[str(exhibition["id"])] == "展会 (1)"


async def test_counts_stay_right_for_documents_indexed_before_the_combined_facet_attribute(
    surveyors: dict[str, int], people: dict[str, CurrentUser]
) -> None:
    """The list counts every group without a filter from one attribute holding all of a customer's values. A
    document indexed before that attribute existed (an index not rebuilt since) has none: the list then counts the
    groups one by one, and shows the same numbers."""
    supervisor, filters = people["zhangwei"], CustomerFilters.from_query({"province": "云南省"})
    combined = await service.list_customers(supervisor, filters)
    # 云南's prospects: 华信, 宏达, 苍山 (王芳's), 李强's own, and 昭通 in the public pool.
    assert combined.facets["city"] == {"昆明市": 2, "曲靖市": 1, "大理白族自治州": 1, "昭通市": 1}
    assert combined.facets["owner_id"] == {str(people["wangfang"].account_id): 3, str(people["liqiang"].account_id): 1}
    assert combined.facets["tier"] == {"A": 1}

    index = meili.client().index(meili.uid(CUSTOMERS))
    documents = [dict(document) for document in index.get_documents({"limit": 100}).results]
    assert all(FACET_VALUES in document for document in documents)
    for document in documents:
        del document[FACET_VALUES]
    meili.wait(index.add_documents(documents))  # replaces each document whole: older documents, as indexed before
    one_by_one = await service.list_customers(supervisor, filters)
    assert one_by_one.facets == combined.facets and one_by_one.facet_totals == combined.facet_totals
    assert names(one_by_one) == names(combined)


async def test_counts_follow_the_filters_in_the_htmx_fragment(
    surveyors: dict[str, int], staff: AsyncTestClient
) -> None:
    yunnan = await staff.get("/customers?q=测绘&province=云南省", headers=FRAGMENT)
    assert yunnan.status_code == 200 and "<html" not in yunnan.text
    # The selects come out of band; the search box is left alone, so it keeps focus and what is typed.
    assert '<div id="filter-selects" hx-swap-oob="innerHTML">' in yunnan.text
    assert 'name="q"' not in yunnan.text
    assert select_options(yunnan.text, "tier")["A"].endswith("(1)")
    assert select_options(yunnan.text, "city")["曲靖市"] == "曲靖市 (1)"
    assert 'id="saved-filter-query"' in yunnan.text

    guangdong = await staff.get("/customers?q=测绘&province=广东省", headers=FRAGMENT)
    assert select_options(guangdong.text, "tier")["A"].endswith("(0)")
    assert "曲靖市" not in select_options(guangdong.text, "city")
    assert select_options(guangdong.text, "province")["云南省"] == "云南省 (3)"
    query = CustomerFilters(q="测绘", province="广东省").query()
    assert f'id="saved-filter-query" form="saved-filter-form" value="{query.replace("&", "&amp;")}"' in guangdong.text


async def test_the_plain_list_shows_the_choices_without_counts(
    surveyors: dict[str, int], staff: AsyncTestClient
) -> None:
    response = await staff.get("/customers")
    assert select_options(response.text, "province")["云南省"] == "云南省"
    assert "(" not in select_options(response.text, "owner")["pool"]


async def test_owner_counts_include_the_public_pool(
    surveyors: dict[str, int], supervisor: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang, li = people["wangfang"], people["liqiang"]
    response = await supervisor.get("/customers?q=测绘")
    owners = select_options(response.text, "owner")
    assert owners[str(wang.account_id)] == "王芳 (3)"
    assert owners[str(li.account_id)] == "李强 (1)"
    assert owners["pool"].endswith("(1)")
    assert owners["me"].endswith("(0)")
    assert owners[""].endswith("(5)")

    # Choosing an owner keeps the others' counts, and the pool is still what the owners leave.
    pool = await supervisor.get("/customers?q=测绘&owner=pool")
    assert select_options(pool.text, "owner")[str(wang.account_id)] == "王芳 (3)"
    assert select_options(pool.text, "owner")["pool"].endswith("(1)")
    assert shown_names(pool.text) == ["昭通测绘公共池客户"]


async def test_staff_counts_rows_and_highlights_never_include_a_colleagues_private_customers(
    surveyors: dict[str, int], staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang, li = people["wangfang"], people["liqiang"]
    page = await service.list_customers(wang, CustomerFilters(q="测绘"))
    assert "昆明李强测绘私有客户" not in names(page)
    assert "昭通测绘公共池客户" in names(page)
    assert set(page.facets["owner_id"]) == {str(wang.account_id)}
    assert page.facets["province"] == {"云南省": 3, "广东省": 1}
    assert page.counts == {"prospect": 4, "member": 1}

    response = await staff.get("/customers?q=测绘")
    assert "李强测绘私有客户" not in response.text and "李强测绘" not in text_of(response.text)
    owners = select_options(response.text, "owner")
    assert owners[""].endswith("(4)") and owners["me"].endswith("(3)") and owners["pool"].endswith("(1)")
    assert str(li.account_id) not in owners
    assert select_options(response.text, "province")["云南省"] == "云南省 (3)"
    assert response.text.count("<mark>测绘</mark>") == 4

    # A colleague's id in the URL shows nothing rather than their customers.
    theirs = await service.list_customers(wang, CustomerFilters(q="测绘", owner=str(li.account_id)))
    assert theirs.rows == [] and theirs.total == 0


# -- highlights -----------------------------------------------------------------------------------------


async def test_highlights_in_the_list_are_escaped(
    search: Search, staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    await make_customer(wang, "<script>alert(1)</script>测试客户", company="昆明<b>测试</b>公司")
    await search.sync()
    response = await staff.get("/customers?q=script")
    assert "<script>alert" not in response.text
    name = re.search(r"<strong>(.*?)</strong>", response.text)
    assert name and name[1].startswith("&lt;script&gt;alert(1)&lt;/") and "<mark>script</mark>" in name[1]

    by_company = await staff.get("/customers?q=测试")
    assert "<b>" not in by_company.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<mark>测试</mark>客户" in by_company.text
    assert "昆明&lt;b&gt;<mark>测试</mark>&lt;/b&gt;公司" in by_company.text


# -- search down ------------------------------------------------------------------------------------------


async def test_the_list_answers_from_the_database_with_a_notice_when_search_is_down(
    surveyors: dict[str, int], search: Search, staff: AsyncTestClient
) -> None:
    working = await staff.get("/customers?q=华信")
    assert 'class="list-notice"' not in working.text
    search.process.stop()
    try:
        response = await staff.get("/customers?q=华信")
        assert response.status_code == 200
        assert 'class="list-notice"' in response.text
        assert "昆明华信测绘有限公司" in text_of(response.text)
        # No counts are known: the choices are listed without them.
        assert select_options(response.text, "province")["云南省"] == "云南省"

        fragment = await staff.get("/customers?q=华信&province=云南省", headers=FRAGMENT)
        assert 'class="list-notice"' in fragment.text and "昆明华信测绘有限公司" in fragment.text

        # A filter without a text query is answered exactly by the database: no notice.
        filtered = await staff.get("/customers?province=广东省")
        assert 'class="list-notice"' not in filtered.text
        assert "广州南沙测绘有限公司" in text_of(filtered.text)
    finally:
        search.process.start()
        meili.mark_up()


# -- saved filter sets ------------------------------------------------------------------------------------


async def test_a_saved_filter_set_is_listed_and_reopens_the_list(
    surveyors: dict[str, int], staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    response = await staff.post(
        "/customers/saved-filters",
        data={"name": " 云南测绘 ", "query": "q=测绘&province=云南省&page=3&colour=blue"},
        headers=SAVED_FRAGMENT,
    )
    assert response.status_code == 200 and "<html" not in response.text
    expected = CustomerFilters(q="测绘", province="云南省").query()
    assert [(row["name"], row["query"]) for row in await service.saved_filters(people["wangfang"])] == [
        ("云南测绘", expected)
    ]
    link = f'href="/customers?{expected.replace("&", "&amp;")}"'
    assert link in response.text and ">云南测绘</a>" in response.text

    page = await staff.get("/customers")
    assert link in page.text
    reopened = await staff.get(f"/customers?{expected}")
    shown = shown_names(reopened.text)
    assert len(shown) == 3 and "大理苍山旅游开发有限公司" not in reopened.text


async def test_saving_without_javascript_goes_back_to_the_list(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    response = await staff.post(
        "/customers/saved-filters",
        data={"name": "我的会员", "query": "kind=member&owner=me"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/customers?kind=member&owner=me"
    assert [row["name"] for row in await service.saved_filters(people["wangfang"])] == ["我的会员"]


@pytest.mark.parametrize("name", ["", "   ", "云" * 61])
async def test_a_saved_filter_needs_a_short_name_and_keeps_what_was_typed(staff: AsyncTestClient, name: str) -> None:
    query = {"name": name, "query": "province=云南省"}
    response = await staff.post("/customers/saved-filters", data=query, headers=SAVED_FRAGMENT)
    assert response.status_code == 422
    assert 'class="field-error"' in response.text and 'aria-invalid="true"' in response.text
    assert f'value="{name}"' in response.text
    assert await SavedFilter.count() == 0

    page = await staff.post("/customers/saved-filters", data=query)
    assert page.status_code == 422 and "<html" in page.text
    assert 'class="field-error"' in page.text and f'value="{name}"' in page.text
    # The page behind the form shows the filters the user was saving.
    assert select_options(page.text, "province")["云南省"].startswith("云南省")
    assert 'value="云南省" selected' in page.text


async def test_saving_under_the_same_name_replaces_the_set(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    for query in ("province=云南省", "province=广东省&tier=A"):
        response = await staff.post(
            "/customers/saved-filters", data={"name": "重点地区", "query": query}, headers=SAVED_FRAGMENT
        )
        assert response.status_code == 200
    saved = await service.saved_filters(people["wangfang"])
    assert [(row["name"], row["query"]) for row in saved] == [
        ("重点地区", CustomerFilters(province="广东省", tier="A").query())
    ]


async def test_each_user_sees_and_removes_only_their_own_saved_filters(
    staff: AsyncTestClient, other_staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    wang, li = people["wangfang"], people["liqiang"]
    mine = await service.save_filter(wang, "我的客户", "owner=me")
    theirs = await service.save_filter(li, "李强的筛选", "province=广东省")

    page = await staff.get("/customers")
    assert "我的客户" in page.text and "李强的筛选" not in page.text

    refused = await staff.post(f"/customers/saved-filters/{theirs}/delete", headers=SAVED_FRAGMENT)
    assert refused.status_code == 404
    plain = await staff.post(f"/customers/saved-filters/{theirs}/delete", follow_redirects=False)
    assert plain.status_code == 404
    assert [row["id"] for row in await service.saved_filters(li)] == [theirs]
    with pytest.raises(service.NotVisible):
        await service.delete_saved_filter(wang, theirs)

    removed = await staff.post(
        f"/customers/saved-filters/{mine}/delete", data={"query": "province=云南省"}, headers=SAVED_FRAGMENT
    )
    assert removed.status_code == 200 and "我的客户" not in removed.text
    assert await service.saved_filters(wang) == []

    again = await service.save_filter(wang, "再存一次", "")
    plain_removed = await staff.post(
        f"/customers/saved-filters/{again}/delete", data={"query": "province=云南省"}, follow_redirects=False
    )
    assert plain_removed.status_code == 303
    assert plain_removed.headers["location"] == f"/customers?{CustomerFilters(province='云南省').query()}"


# -- the analysis filters: date entered, industry, RFM segment ----------------------------------------------
#
# The analysis pages link each figure to the list with its filters; the list must show exactly those customers
# whether Meilisearch answers or the database does.

# Entered at (UTC), and the day that is in Shanghai, eight hours ahead.
COHORT = {
    # name: (kind, channel, industry, segment, created_at in UTC)
    "昆明矿业勘查院": ("member", "展会", "矿业", "important_value", "2025-12-31T16:00:00+00:00"),  # 1 Jan 00:00
    "曲靖煤矿设计所": ("member", "展会", "矿业", "important_value", "2026-02-28T17:00:00+00:00"),  # 1 Mar 01:00
    "玉溪国土资源局": ("member", "展会", "政府机关", "important_value", "2026-03-31T15:59:59+00:00"),  # 31 Mar 23:59
    "大理跨年客户": ("member", "展会", "矿业", "important_value", "2025-12-31T15:59:59+00:00"),  # 31 Dec 23:59
    "红河四月客户": ("member", "展会", "矿业", "important_value", "2026-03-31T16:00:00+00:00"),  # 1 Apr 00:00
    "文山潜在客户": ("prospect", "展会", "矿业", "important_value", "2026-02-10T02:00:00+00:00"),
    "楚雄广告客户": ("member", "广告", "矿业", "important_value", "2026-02-10T02:00:00+00:00"),
    "保山一般客户": ("member", "展会", "矿业", "general_value", "2026-02-28T15:59:59+00:00"),  # 28 Feb 23:59
    "普洱未分群客户": ("member", "展会", "政府机关", "", "2026-02-28T16:00:00+00:00"),  # 1 Mar 00:00
}


async def option_id(kind: str, label: str) -> int:
    row = await OptionItem.select(OptionItem.id).where(OptionItem.kind == kind, OptionItem.label == label).first()
    assert row is not None
    return row["id"]


@pytest.fixture(params=["index", "database"])
def answered_by(request: pytest.FixtureRequest) -> str:
    """Each test runs twice: with the search index, and without one (search is down: the database answers)."""
    if request.param == "index":
        request.getfixturevalue("search")
    return request.param


@pytest.fixture
async def cohort(answered_by: str, people: dict[str, CurrentUser]) -> dict[str, int]:
    """Customers entered around the turn of the year and of March, in two channels, two industries and RFM
    segments, all 王芳's."""
    ids = {}
    for name, (kind, channel, industry, segment, created) in COHORT.items():
        customer_id = await make_customer(
            people["wangfang"],
            name,
            kind=kind,
            source_channel=str(await option_id("source_channel", channel)),
            industry=str(await option_id("industry", industry)),
        )
        entered = datetime.fromisoformat(created)
        await Customer.update({Customer.created_at: entered, Customer.rfm_segment: segment}).where(
            Customer.id == customer_id
        )
        ids[name] = customer_id
    if answered_by == "index":
        await sync.drain()
    return ids


async def listed(user: CurrentUser, answered_by: str, query: str) -> tuple[set[str], dict[str, int]]:
    """The names on the tab a list URL asks for, and the count of each tab; checks which engine answered."""
    page = await service.list_customers(user, CustomerFilters.from_query(dict(parse_qsl(query))))
    assert page.total == len(page.rows) == page.counts[page.filters.kind]
    # Facet counts come only from the index: they show which engine answered.
    assert bool(page.facet_totals) == (answered_by == "index") and not page.limited
    return set(names(page)), page.counts


async def analysis_link() -> str:
    """What an analysis figure links to: trade-fair members entered in the first quarter, important value."""
    channel = await option_id("source_channel", "展会")
    return (
        f"/customers?kind=member&channel={channel}&created_from=2026-01-01&created_to=2026-03-31"
        "&segment=important_value"
    )


def tab_counts(html: str) -> list[int]:
    """The counts on the prospects and members tabs, in that order."""
    return [int(count.replace(",", "")) for count in re.findall(r'<span class="count">([\d,]+)</span>', html)]


async def test_a_link_from_the_analysis_shows_exactly_its_customers_with_exact_tab_counts(
    cohort: dict[str, int], answered_by: str, supervisor: AsyncTestClient
) -> None:
    link = await analysis_link()
    response = await supervisor.get(link)
    assert response.status_code == 200
    assert set(shown_names(response.text)) == {"昆明矿业勘查院", "曲靖煤矿设计所", "玉溪国土资源局"}
    assert tab_counts(response.text) == [1, 3]
    assert 'name="created_from" value="2026-01-01"' in response.text
    assert 'name="created_to" value="2026-03-31"' in response.text
    assert 'value="important_value" selected' in response.text


@pytest.mark.parametrize(
    ("query", "members", "prospects"),
    [
        # Shanghai days: 2026-02-28T16:00Z is already 1 March there, 2026-03-31T16:00Z already 1 April.
        ("created_from=2026-03-01&created_to=2026-03-31", {"曲靖煤矿设计所", "玉溪国土资源局", "普洱未分群客户"}, 0),
        ("created_from=2026-03-31&created_to=2026-03-01", {"曲靖煤矿设计所", "玉溪国土资源局", "普洱未分群客户"}, 0),
        ("created_from=2026-02-01&created_to=2026-02-28", {"保山一般客户", "楚雄广告客户"}, 1),
        ("created_from=2026-04-01", {"红河四月客户"}, 0),
        ("created_to=2025-12-31", {"大理跨年客户"}, 0),
        ("created_from=2026-01-01&created_to=2026-01-01", {"昆明矿业勘查院"}, 0),
        ("industry=政府机关", {"玉溪国土资源局", "普洱未分群客户"}, 0),
        ("segment=general_value", {"保山一般客户"}, 0),
        ("segment=important_keep", set(), 0),
        (
            "industry=矿业&segment=important_value",
            {"昆明矿业勘查院", "曲靖煤矿设计所", "大理跨年客户", "红河四月客户", "楚雄广告客户"},
            1,
        ),
        ("industry=政府机关&created_from=2026-03-01&created_to=2026-03-01", {"普洱未分群客户"}, 0),
    ],
)
async def test_each_analysis_filter_narrows_the_list_to_exactly_its_customers(
    cohort: dict[str, int],
    answered_by: str,
    people: dict[str, CurrentUser],
    query: str,
    members: set[str],
    prospects: int,
) -> None:
    for label_ in ("政府机关", "矿业"):
        query = query.replace(f"industry={label_}", f"industry={await option_id('industry', label_)}")
    shown, counts = await listed(people["zhangwei"], answered_by, f"kind=member&{query}")
    assert shown == members
    assert counts == {"prospect": prospects, "member": len(members)}


async def test_a_campaign_row_of_the_analysis_lists_exactly_that_campaigns_customers(
    cohort: dict[str, int], answered_by: str, people: dict[str, CurrentUser], supervisor: AsyncTestClient
) -> None:
    campaigns = {
        "曲靖煤矿设计所": ("baidu", "春季矿业展"),
        "玉溪国土资源局": ("baidu", "春季矿业展"),
        "大理跨年客户": ("baidu", ""),
    }
    for name, (source, campaign) in campaigns.items():
        await Customer.update({Customer.utm_source: source, Customer.utm_campaign: campaign}).where(
            Customer.id == cohort[name]
        )
        await SearchOutbox.insert(SearchOutbox(entity="customer", entity_id=cohort[name]))
    if answered_by == "index":
        await sync.drain()
    query = "kind=member&utm_source=baidu&utm_campaign=春季矿业展"
    shown, counts = await listed(people["zhangwei"], answered_by, query)
    assert shown == {"曲靖煤矿设计所", "玉溪国土资源局"}
    assert counts == {"prospect": 0, "member": 2}
    source_only, _ = await listed(people["zhangwei"], answered_by, "kind=member&utm_source=baidu")
    assert source_only == set(campaigns)
    page = await supervisor.get("/customers?kind=member&utm_source=baidu&utm_campaign=春季矿业展")
    # The filter has no select: it shows, travels with the form, and can be taken off.
    assert 'name="utm_campaign" value="春季矿业展"' in page.text
    assert re.search(r'href="/customers\?kind=member" title="[^"]+">×</a>', page.text)


async def test_staff_get_the_same_filters_inside_their_own_scope(
    cohort: dict[str, int], answered_by: str, people: dict[str, CurrentUser]
) -> None:
    mine, _ = await listed(people["wangfang"], answered_by, "kind=member&created_from=2026-03-01&created_to=2026-03-31")
    assert mine == {"曲靖煤矿设计所", "玉溪国土资源局", "普洱未分群客户"}
    theirs, counts = await listed(people["liqiang"], answered_by, "kind=member&created_from=2026-03-01")
    assert theirs == set() and counts == {"prospect": 0, "member": 0}


async def test_industry_and_segment_selects_count_under_the_other_filters(
    cohort: dict[str, int], answered_by: str, supervisor: AsyncTestClient
) -> None:
    mining, government = await option_id("industry", "矿业"), await option_id("industry", "政府机关")
    first_quarter = "kind=member&created_from=2026-01-01&created_to=2026-03-31"
    response = await supervisor.get(f"/customers?{first_quarter}")
    industries, segments = select_options(response.text, "industry"), select_options(response.text, "segment")
    if answered_by == "database":
        # The database counts no facets: the choices are there, without numbers.
        assert industries[str(mining)] == "矿业" and "(" not in segments["important_value"]
        return
    assert industries[str(mining)] == "矿业 (4)" and industries[str(government)] == "政府机关 (2)"
    assert industries[""].endswith("(6)")
    assert segments["important_value"].endswith("(4)") and segments["general_value"].endswith("(1)")
    assert segments["important_keep"].endswith("(0)") and segments[""].endswith("(6)")

    # Choosing a segment keeps the other segments' counts and narrows the industries.
    chosen = await supervisor.get(f"/customers?{first_quarter}&segment=important_value", headers=FRAGMENT)
    segments = select_options(chosen.text, "segment")
    assert segments["general_value"].endswith("(1)") and segments["important_value"].endswith("(4)")
    assert select_options(chosen.text, "industry")[str(mining)] == "矿业 (3)"


@pytest.mark.parametrize("answered_by", ["index"], indirect=True)
async def test_the_analysis_link_works_while_meilisearch_is_down(
    cohort: dict[str, int], answered_by: str, search: Search, supervisor: AsyncTestClient
) -> None:
    link = await analysis_link()
    search.process.stop()
    try:
        for headers in ({}, FRAGMENT):
            response = await supervisor.get(link, headers=headers)
            assert response.status_code == 200
            assert set(shown_names(response.text)) == {"昆明矿业勘查院", "曲靖煤矿设计所", "玉溪国土资源局"}
            assert tab_counts(response.text) == [1, 3]
            assert 'class="list-notice"' not in response.text
    finally:
        search.process.start()
        meili.mark_up()


async def test_the_analysis_filters_are_kept_in_saved_filters_and_the_fragment(
    cohort: dict[str, int], answered_by: str, staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    mining = await option_id("industry", "矿业")
    typed = f"kind=member&created_from=2026-03-31&created_to=2026-01-01&industry={mining}&segment=important_value"
    expected = CustomerFilters(
        kind="member",
        created_from=date(2026, 1, 1),
        created_to=date(2026, 3, 31),
        industry=mining,
        segment="important_value",
    ).query()
    assert "created_from=2026-01-01&created_to=2026-03-31" in expected

    fragment = await staff.get(f"/customers?{typed}", headers=FRAGMENT)
    assert fragment.headers["hx-push-url"] == f"/customers?{expected}"
    assert set(shown_names(fragment.text)) == {"昆明矿业勘查院", "曲靖煤矿设计所", "楚雄广告客户"}
    assert f'id="saved-filter-query" form="saved-filter-form" value="{expected.replace("&", "&amp;")}"' in fragment.text
    # The tabs keep every filter but the kind.
    prospects = CustomerFilters.from_query(dict(parse_qsl(expected))).query(kind="prospect", page=1)
    assert f'href="/customers?{prospects.replace("&", "&amp;")}"' in fragment.text

    saved = await staff.post(
        "/customers/saved-filters", data={"name": "一季度矿业重要价值", "query": typed}, headers=SAVED_FRAGMENT
    )
    assert saved.status_code == 200
    assert [row["query"] for row in await service.saved_filters(people["wangfang"])] == [expected]
    reopened = await staff.get(f"/customers?{expected}")
    assert set(shown_names(reopened.text)) == {"昆明矿业勘查院", "曲靖煤矿设计所", "楚雄广告客户"}
