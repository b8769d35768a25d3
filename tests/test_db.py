"""The database plumbing under every page: prepared queries and the page-wide read transaction."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from app import db
from app.accounts.service import CurrentUser
from app.customers import service
from app.customers.tables import Customer

pytestmark = pytest.mark.db


async def _customer(owner: CurrentUser, name: str) -> int:
    return await service.create_customer(owner, {"name": name, "origin": "own", "province": "云南省"})


async def test_a_prepared_query_puts_each_runs_values_in_place(people: dict[str, CurrentUser]) -> None:
    first = await _customer(people["wangfang"], "曲靖宏达矿业有限公司")
    second = await _customer(people["liqiang"], "玉溪市自然资源局")
    by_id = db.Prepared(lambda customer_id: Customer.select(Customer.name).where(Customer.id == customer_id).first())
    by_owner = db.Prepared(lambda owner: Customer.select(Customer.id).where(Customer.owner == owner))

    assert await by_id(customer_id=first) == {"name": "曲靖宏达矿业有限公司"}
    assert await by_id(customer_id=second) == {"name": "玉溪市自然资源局"}
    assert await by_id(customer_id=db.MAX_ID) is None
    assert await by_owner(owner=people["liqiang"].account_id) == [{"id": second}]
    # The same as Piccolo generates afresh.
    assert await by_owner(owner=people["wangfang"].account_id) == await Customer.select(Customer.id).where(
        Customer.owner == people["wangfang"].account_id
    )


async def test_select_in_reads_live_rows_by_value_and_can_take_the_oldest_of_each(
    people: dict[str, CurrentUser],
) -> None:
    staff = people["wangfang"]
    first = await _customer(staff, "公路局")
    second = await _customer(staff, "公路局")
    other = await _customer(staff, "水务局")
    gone = await _customer(staff, "自然资源局")
    await service.soft_delete(staff, gone)
    keys = ["公路局", "水务局", "自然资源局", "没有的名字"]
    async with db.transaction():
        every = await db.select_in(Customer, ["id", "name"], "name", keys)
        oldest = await db.select_in(Customer, ["id", "name"], "name", keys, oldest=True)
        none = await db.select_in(Customer, ["id"], "name", [])
    assert every == [{"id": first, "name": "公路局"}, {"id": second, "name": "公路局"}, {"id": other, "name": "水务局"}]
    assert oldest == [{"id": first, "name": "公路局"}, {"id": other, "name": "水务局"}]
    assert none == []


async def test_the_oldest_of_a_value_is_the_oldest_one_still_live(people: dict[str, CurrentUser]) -> None:
    staff = people["wangfang"]
    gone = await _customer(staff, "交通运输局")
    kept = await _customer(staff, "交通运输局")
    await _customer(staff, "交通运输局")
    await service.soft_delete(staff, gone)
    async with db.transaction():
        oldest = await db.select_in(Customer, ["id"], "name", ["交通运输局", "交通运输局"], oldest=True)
    assert oldest == [{"id": kept}]


async def test_a_page_reads_one_snapshot_and_a_long_read_still_answers(
    people: dict[str, CurrentUser], monkeypatch: pytest.MonkeyPatch
) -> None:
    await _customer(people["wangfang"], "曲靖宏达矿业有限公司")

    async def write_elsewhere() -> None:
        await _customer(people["wangfang"], "玉溪市自然资源局")

    # No time at all for a read on the event loop: every read moves to a worker thread and answers there.
    monkeypatch.setattr(db._InlineReads, "BUDGET", 0.0)
    monkeypatch.setattr(db._InlineReads, "STEP", 1)
    moved: list[object] = []
    to_thread = asyncio.to_thread

    async def spy(function: Any) -> Any:
        moved.append(function)
        return await to_thread(function)

    monkeypatch.setattr(asyncio, "to_thread", spy)
    async with db.read_transaction():
        assert await Customer.count() == 1
        await asyncio.create_task(write_elsewhere(), context=contextvars.Context())
        assert await Customer.count() == 1
        assert [row["name"] for row in await Customer.select(Customer.name)] == ["曲靖宏达矿业有限公司"]
    assert await Customer.count() == 2
    assert len(moved) == (3 if db.is_sqlite() else 0)


async def test_a_write_inside_a_pages_read_transaction_is_refused(people: dict[str, CurrentUser]) -> None:
    customer_id = await _customer(people["wangfang"], "曲靖宏达矿业有限公司")
    refused = "GET handlers must not write" if db.is_sqlite() else "read-only transaction"
    with pytest.raises(Exception, match=refused):
        async with db.read_transaction():
            await Customer.update({Customer.name: "改名"}).where(Customer.id == customer_id)
    assert await Customer.select(Customer.name).where(Customer.id == customer_id).first() == {
        "name": "曲靖宏达矿业有限公司"
    }
