"""Instant search against a real Meilisearch: Chinese substrings, pinyin, phone digits, typos, highlighting,
the permission scope, facet counts, and the outbox that keeps the index in step with the database."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from app.accounts.service import CurrentUser
from app.core import service as core
from app.core.tables import SearchOutbox
from app.customers import service as customers
from app.customers.tables import Customer
from app.db import transaction
from app.feedback import service as feedback
from app.followups import service as followups
from search import engine as meili
from search import query, sync
from search.documents import FACET_VALUES
from search.text import grams, phone_query, phone_suffixes, pinyin
from tests.conftest import Search

pytestmark = pytest.mark.db


async def make_customer(owner: CurrentUser, name: str, **fields: str) -> int:
    data = {"name": name, "origin": "own", "province": "云南省", "city": "昆明市", **fields}
    return await customers.create_customer(owner, {**data, "confirm_duplicates": "1"})


def names(found: query.Found) -> list[str]:
    return [str(hit.title).replace("<mark>", "").replace("</mark>", "") for hit in found.customers]


def search_as(user: CurrentUser, text: str) -> query.Found:
    return query.search_everything(text, customers.search_scope(user))


# -- words ---------------------------------------------------------------------------------------------------


def test_a_name_carries_its_short_substrings_its_pinyin_and_its_initials() -> None:
    assert {"王建", "建国", "王建国"} <= set(grams(["王建国"]))
    assert {"wangjianguo", "wang jian guo", "wjg"} <= set(pinyin(["王建国"]))


def test_surnames_are_also_read_as_surnames() -> None:
    assert "zengguofan" in pinyin(["曾国藩"])
    assert "shantianfang" in pinyin(["单田芳"])
    assert "xiejin" in pinyin(["解缙"])


def test_a_phone_number_carries_every_suffix_of_four_digits_or_more() -> None:
    keys = phone_suffixes(["13812345678"])
    assert {"13812345678", "12345678", "5678"} <= set(keys)
    assert "567" not in keys


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("+86 138-1234-5678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("0086 138 1234 5678", "13812345678"),
        ("+86 1381", "1381"),
        ("+86 871 6512 3456", "87165123456"),
        ("8613", "8613"),
        ("0871-6512 3456", "087165123456"),
    ],
)
def test_a_mainland_number_is_searched_without_its_country_code(typed: str, sent: str) -> None:
    assert phone_query(typed) == sent


# -- finding customers -------------------------------------------------------------------------------------


@pytest.fixture
async def indexed(search: Search, people: dict[str, CurrentUser]) -> dict[str, int]:
    wang = people["wangfang"]
    ids = {
        "王建国": await make_customer(wang, "王建国", mobile="138 1234 5678", company="昆明市规划设计研究院有限公司"),
        "曾小明": await make_customer(wang, "曾小明", phone="0871-6512 3456", email="zeng.xm@yunnan-mining.cn"),
        "单田芳": await make_customer(wang, "单田芳", wechat="shantf_km"),
        "Acme": await make_customer(wang, "Acme Mining Consultants"),
    }
    assert await search.sync() > 0
    return ids


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("建国", "王建国"),
        ("王建", "王建国"),
        ("规划设计", "王建国"),
        ("划设计研", "王建国"),
        ("设计研究院", "王建国"),
        ("市规划设计研", "王建国"),
        ("研究院有限公司", "王建国"),
        ("市规划", "王建国"),
        ("小明", "曾小明"),
        ("田芳", "单田芳"),
    ],
)
async def test_any_two_or_more_characters_of_a_name_or_company_find_it(
    indexed: dict[str, int], people: dict[str, CurrentUser], typed: str, expected: str
) -> None:
    assert names(search_as(people["wangfang"], typed)) == [expected]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("wangjianguo", "王建国"),
        ("wang jian guo", "王建国"),
        ("wjg", "王建国"),
        ("zengxiaoming", "曾小明"),
        ("zxm", "曾小明"),
        ("shantianfang", "单田芳"),
        ("wangjiangou", "王建国"),
        ("acme minig", "Acme Mining Consultants"),
    ],
)
async def test_pinyin_initials_and_typos_find_chinese_and_latin_names(
    indexed: dict[str, int], people: dict[str, CurrentUser], typed: str, expected: str
) -> None:
    assert expected in names(search_as(people["wangfang"], typed))


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("5678", "王建国"),
        ("12345678", "王建国"),
        ("1381234", "王建国"),
        ("13812345678", "王建国"),
        ("+86 138-1234-5678", "王建国"),
        ("8613812345678", "王建国"),
        ("0086 13812345678", "王建国"),
        ("+86 871 6512 3456", "曾小明"),
        ("65123456", "曾小明"),
        ("0871-6512", "曾小明"),
    ],
)
async def test_four_or_more_digits_of_a_phone_number_find_the_customer(
    indexed: dict[str, int], people: dict[str, CurrentUser], typed: str, expected: str
) -> None:
    assert names(search_as(people["wangfang"], typed)) == [expected]


async def test_digits_are_never_corrected(indexed: dict[str, int], people: dict[str, CurrentUser]) -> None:
    assert names(search_as(people["wangfang"], "13812345679")) == []
    assert names(search_as(people["wangfang"], "5679")) == []


async def test_matches_are_highlighted_and_a_name_is_always_text(
    search: Search, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    await make_customer(wang, "<script>alert(1)</script>测试客户")
    await make_customer(wang, "王建国")
    await search.sync()
    title = str(search_as(wang, "script").customers[0].title)
    assert "<script>" not in title and title.startswith("&lt;") and "<mark>script</mark>" in title
    assert str(search_as(wang, "建国").customers[0].title) == "王<mark>建国</mark>"
    phone = await make_customer(wang, "赵强", mobile="13912345678")
    await search.sync()
    hit = search_as(wang, "2345").customers[0]
    assert hit.id == phone and "<mark>" in str(hit.detail)


# -- scope -----------------------------------------------------------------------------------------------


async def test_staff_never_find_a_colleagues_customer_or_its_follow_ups(
    search: Search, people: dict[str, CurrentUser]
) -> None:
    wang, li = people["wangfang"], people["liqiang"]
    theirs = await make_customer(li, "李强的客户昆明铜业")
    await followups.add_followup(li, theirs, {"content": "昆明铜业要报价", "happened_at": ""})
    pooled = await make_customer(li, "公共池昆明铜业分公司")
    await Customer.update({Customer.owner: None}).where(Customer.id == pooled)
    await customers.touch(pooled)
    await search.sync()
    assert names(search_as(wang, "昆明铜业")) == ["公共池昆明铜业分公司"]
    assert search_as(wang, "报价").follow_ups == []
    assert [hit.customer_id for hit in search_as(li, "报价").follow_ups] == [theirs]
    assert len(search_as(people["zhangwei"], "昆明铜业").customers) == 2


async def test_follow_ups_and_feedback_are_found_with_their_customer(
    search: Search, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    customer_id = await make_customer(wang, "玉溪市自然资源局")
    await followups.add_followup(wang, customer_id, {"content": "约了下周去现场踏勘", "happened_at": ""})
    await feedback.submit_feedback(content="报告交付很及时", rating=5, customer_id=customer_id, actor=wang)
    await search.sync()
    found = search_as(wang, "踏勘")
    assert [hit.customer_id for hit in found.follow_ups] == [customer_id]
    assert "<mark>" in str(found.follow_ups[0].detail)
    assert [hit.customer_id for hit in search_as(wang, "交付").feedback] == [customer_id]


# -- sync ------------------------------------------------------------------------------------------------


async def test_every_write_reaches_the_index_and_a_delete_removes_it(
    search: Search, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    customer_id = await make_customer(wang, "曲靖宏达矿业有限公司")
    await search.sync()
    await customers.update_field(wang, customer_id, "name", "曲靖鸿达矿业有限公司")
    await customers.add_contact(wang, customer_id, {"name": "欧阳娜", "mobile": "13698765432"})
    assert await SearchOutbox.count() >= 2
    await search.sync()
    assert await SearchOutbox.count() == 0
    assert names(search_as(wang, "鸿达")) == ["曲靖鸿达矿业有限公司"]
    assert names(search_as(wang, "宏达")) == []
    assert names(search_as(wang, "欧阳娜")) == ["曲靖鸿达矿业有限公司"]
    assert names(search_as(wang, "98765432")) == ["曲靖鸿达矿业有限公司"]
    await customers.soft_delete(wang, customer_id)
    await search.sync()
    assert names(search_as(people["zhangwei"], "鸿达")) == []


async def index_matches_database() -> None:
    """Every live customer is in the index under its current name, and nothing else is."""
    documents = meili.client().index(meili.uid("customers")).get_documents({"limit": 10_000, "fields": ["id", "name"]})
    indexed = {document.id: document.name for document in documents.results}
    rows = await Customer.select(Customer.id, Customer.name).where(Customer.deleted_at.is_null())
    assert indexed == {row["id"]: row["name"] for row in rows}


async def test_a_thousand_changes_made_while_meilisearch_is_down_all_arrive(
    search: Search, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    search.process.stop()
    try:
        ids = [await make_customer(wang, f"停机测试客户{number:03d}") for number in range(250)]
        for round_ in range(3):
            for number, customer_id in enumerate(ids):
                await customers.update_field(wang, customer_id, "name", f"停机改名{round_}号客户{number:03d}")
        with pytest.raises(meili.Unavailable):
            await sync.drain_once()
        failed = await SearchOutbox.select().where(SearchOutbox.attempts > 0)
        assert failed and failed[0]["last_error"]
        page = await customers.list_customers(wang, customers.CustomerFilters(q="停机改名2号客户007"))
        assert page.limited and [row["id"] for row in page.rows] == [ids[7]]
    finally:
        search.process.start()
        meili.mark_up()
    await search.sync()
    assert await SearchOutbox.count() == 0
    await index_matches_database()
    assert names(search_as(wang, "停机改名2号客户123"))[0] == "停机改名2号客户123"


async def test_the_kept_search_connection_survives_a_restart_and_reports_an_outage(
    search: Search, people: dict[str, CurrentUser]
) -> None:
    """The list's searches reuse one connection: a Meilisearch that restarted in between is asked again on a new
    one, and one that is down makes the list fall back to the database, like every other search call."""
    wang = people["wangfang"]
    customer_id = await make_customer(wang, "长连接测试客户")
    await search.sync()
    filters = customers.CustomerFilters(q="长连接测试客户")
    assert [row["id"] for row in (await customers.list_customers(wang, filters)).rows] == [customer_id]
    search.process.stop()
    search.process.start()
    page = await customers.list_customers(wang, filters)
    assert not page.limited and [row["id"] for row in page.rows] == [customer_id]
    search.process.stop()
    try:
        with pytest.raises(meili.Unavailable):
            meili.call_sync(meili.multi_search, [{"indexUid": meili.uid("customers"), "q": "长连接"}])
        page = await customers.list_customers(wang, filters)
        assert page.limited and [row["id"] for row in page.rows] == [customer_id]
    finally:
        search.process.start()
        meili.mark_up()


async def test_searches_sent_side_by_side_answer_in_order_and_report_a_refusal(
    search: Search, people: dict[str, CurrentUser]
) -> None:
    """The filtered list sends its page and its counts as requests at once: each batch's answers come back in
    the order asked, and a batch Meilisearch refuses is an error for the whole call, not a missing count."""
    wang = people["wangfang"]
    first = await make_customer(wang, "并行查询甲客户")
    second = await make_customer(wang, "并行查询乙客户")
    await search.sync()
    customers_uid = meili.uid("customers")
    answers = meili.call_sync(
        meili.multi_searches,
        [
            [{"indexUid": customers_uid, "filter": f"id = {first}", "attributesToRetrieve": ["id"]}],
            [
                {"indexUid": customers_uid, "filter": f"id = {second}", "attributesToRetrieve": ["id"]},
                {"indexUid": customers_uid, "q": "并行查询", "hitsPerPage": 0, "facets": ["kind"]},
            ],
        ],
    )
    assert [[hit["id"] for hit in answer.get("hits", [])] for batch in answers for answer in batch] == [
        [first],
        [second],
        [],
    ]
    assert answers[1][1]["facetDistribution"]["kind"] == {"prospect": 2}
    with pytest.raises(meili.Refused) as refused:
        meili.call_sync(
            meili.multi_searches,
            [
                [{"indexUid": customers_uid, "q": "并行查询"}],
                [{"indexUid": customers_uid, "q": "并行查询", "sort": ["no_such_attribute:asc"]}],
            ],
        )
    assert refused.value.code == "invalid_search_sort"


async def test_reindex_swaps_in_a_full_index_while_writes_go_on(search: Search, people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    ids = [await make_customer(wang, f"重建索引客户{number:03d}") for number in range(300)]
    await search.sync()
    done = asyncio.Event()
    seen_empty = []

    async def keep_writing() -> None:
        number = 0
        while not done.is_set():
            await customers.update_field(wang, ids[number % len(ids)], "name", f"重建期间改名{number:03d}")
            await make_customer(wang, f"重建期间新客户{number:03d}")
            await sync.drain()
            number += 1
            await asyncio.sleep(0)

    async def keep_searching() -> None:
        while not done.is_set():
            found = await meili.call(query.search_everything, "客户", "")
            seen_empty.append(found.empty)
            await asyncio.sleep(0.01)

    writer, reader = asyncio.create_task(keep_writing()), asyncio.create_task(keep_searching())
    progress: list[tuple[int, int]] = []
    try:
        counts = await sync.reindex(lambda done_, total: progress.append((done_, total)))
    finally:
        done.set()
        await asyncio.gather(writer, reader)
    await search.sync()
    assert progress and progress[-1][0] == progress[-1][1]
    assert counts["customers"] >= 300
    assert seen_empty and not any(seen_empty)
    await index_matches_database()
    assert await SearchOutbox.count() == 0


async def test_the_worker_keeps_the_index_in_step_and_survives_an_outage(
    search: Search, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    stop = asyncio.Event()
    worker = asyncio.create_task(sync.run_worker(stop=stop))

    async def found(text: str) -> bool:
        for _ in range(200):
            if names(await meili.call(search_as, wang, text)):
                return True
            await asyncio.sleep(0.05)
        return False

    async def drained() -> bool:
        # A document can be searchable a moment before the worker has seen its task
        # succeed and deleted the outbox row.
        for _ in range(200):
            if await SearchOutbox.count() == 0:
                return True
            await asyncio.sleep(0.05)
        return False

    try:
        await make_customer(wang, "红河州建设投资有限公司")
        assert await found("红河州建设")
        assert await drained()
        search.process.stop()
        await make_customer(wang, "文山州交通运输局")
        await asyncio.sleep(0.5)
        assert await SearchOutbox.count() == 1
        search.process.start()
        meili.mark_up()
        assert await found("文山州交通")
    finally:
        stop.set()
        await worker
    assert await SearchOutbox.count() == 0


async def test_two_workers_draining_at_once_leave_the_index_exact(
    search: Search, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    ids = [await make_customer(wang, f"并发同步客户{number:03d}") for number in range(60)]
    for round_ in range(3):
        for number, customer_id in enumerate(ids):
            await customers.update_field(wang, customer_id, "name", f"并发第{round_}轮客户{number:03d}")
    await asyncio.gather(sync.drain(limit=25), sync.drain(limit=25))
    assert await SearchOutbox.count() == 0
    await index_matches_database()


async def test_search_status_compares_the_index_with_the_database(
    search: Search, people: dict[str, CurrentUser]
) -> None:
    await make_customer(people["wangfang"], "保山市水利局")
    behind = await sync.status()
    assert behind.available and behind.outbox_depth == 1 and behind.oldest_pending is not None
    assert behind.database_counts["customers"] == 1 and behind.index_counts["customers"] == 0
    assert not behind.in_step
    await search.sync()
    assert (await sync.status()).in_step


# -- the analysis filters in the index ----------------------------------------------------------------------


async def test_a_changed_rfm_segment_reaches_the_index_with_its_customer(
    search: Search, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    customer_id = await make_customer(wang, "曲靖宏达矿业有限公司")
    await search.sync()
    important = customers.CustomerFilters(segment="important_value")
    async with transaction():
        await Customer.update({Customer.rfm_segment: "important_value"}).where(Customer.id == customer_id)
        await core.record(
            actor_id=None,
            entity="customer",
            entity_id=customer_id,
            customer_id=customer_id,
            action="update",
            changes={"rfm_segment": ["", "important_value"]},
        )
    # The list answers from the index, which has not heard of the change yet.
    assert (await customers.list_customers(wang, important)).rows == []
    await search.sync()
    page = await customers.list_customers(wang, important)
    assert [row["id"] for row in page.rows] == [customer_id]
    assert page.facets["segment"] == {"important_value": 1}


async def test_start_up_gives_an_index_of_an_earlier_release_the_new_filters(
    search: Search, people: dict[str, CurrentUser]
) -> None:
    wang = people["wangfang"]
    index = meili.client().index(meili.uid("customers"))
    earlier = [
        name
        for name in meili.SETTINGS["customers"]["filterableAttributes"]
        if name not in ("segment", "created_ts", FACET_VALUES)
    ]
    meili.wait(index.update_settings({"filterableAttributes": earlier}))
    customer_id = await make_customer(wang, "玉溪矿业勘查院")
    await Customer.update({Customer.rfm_segment: "general_keep"}).where(Customer.id == customer_id)
    await search.sync()
    # Its documents had no combined facet attribute either.
    documents = [dict(document) for document in index.get_documents({"limit": 10}).results]
    for document in documents:
        del document[FACET_VALUES]
    meili.wait(index.add_documents(documents))
    entered = customers.CustomerFilters(segment="general_keep", created_from=date(2020, 1, 1))
    in_yunnan = customers.CustomerFilters(province="云南省")

    # Until the worker has applied the settings, Meilisearch refuses the new filters and facets: the
    # database answers instead of an error.
    for filters in (entered, in_yunnan):
        waiting = await customers.list_customers(wang, filters)
        assert [row["id"] for row in waiting.rows] == [customer_id] and not waiting.facet_totals

    await sync.prepare_indexes()
    assert {"segment", "created_ts", FACET_VALUES} <= set(index.get_filterable_attributes())
    # The documents were rebuilt with the attribute.
    rebuilt = meili.client().index(meili.uid("customers")).get_documents({"limit": 10}).results
    assert [dict(document)[FACET_VALUES] for document in rebuilt] == [
        [
            "kind:prospect",
            f"owner_id:{wang.account_id}",
            "province:云南省",
            "city:昆明市",
            "origin:own",
            "segment:general_keep",
        ]
    ]
    for filters in (entered, in_yunnan):
        page = await customers.list_customers(wang, filters)
        assert [row["id"] for row in page.rows] == [customer_id]
        assert page.facets["segment"] == {"general_keep": 1}
