"""The admin's option lists: add, rename, deactivate and reorder entries, with an audit row for each change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app.accounts.service import CurrentUser
from app.core.tables import AuditLog
from app.i18n import _
from app.options import service as options
from app.options.tables import OptionItem, OptionKind
from tests.conftest import log_in, text_of

pytestmark = pytest.mark.db


@pytest.fixture(autouse=True)
async def restore_option_lists(clean_database: None) -> AsyncIterator[None]:
    """The option lists survive the per-test cleanup (they are seeded once), so put back what a test changed."""
    before = await OptionItem.select()
    yield
    await OptionItem.delete().where(OptionItem.id.not_in([row["id"] for row in before]))
    for row in before:
        await OptionItem.update({column: value for column, value in row.items() if column != "id"}).where(
            OptionItem.id == row["id"]
        )


def card_headers(kind: OptionKind) -> dict[str, str]:
    """What htmx sends when a form or link in a list's card targets that card."""
    return {"HX-Request": "true", "HX-Target": f"options-{kind.value}"}


async def entry(kind: OptionKind, label: str) -> dict[str, Any]:
    rows = await options.options(kind, include_inactive=True)
    return next(row for row in rows if row["label"] == label)


async def labels(kind: OptionKind, *, include_inactive: bool = False) -> list[str]:
    return [row["label"] for row in await options.options(kind, include_inactive=include_inactive)]


async def audit_rows(option_id: int) -> list[dict[str, Any]]:
    return (
        await AuditLog.select()
        .where(AuditLog.entity == "option", AuditLog.entity_id == option_id)
        .order_by(AuditLog.id)
        .output(load_json=True)
    )


async def test_admin_sees_the_four_option_lists(admin: AsyncTestClient) -> None:
    page = await admin.get("/admin/options")
    assert page.status_code == 200
    text = text_of(page.text)
    for heading in (_("Source channels"), _("Industries"), _("Budget bands"), _("Follow-up methods")):
        assert heading in text
    for seeded in ("网站在线咨询", "Trade fair", "矿业", "5万以下", "拜访"):
        assert seeded in text
    for kind in OptionKind:
        assert f'<section class="card" id="options-{kind.value}">' in page.text


async def test_admin_adds_a_source_channel_in_place(admin: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    kind = OptionKind.source_channel
    response = await admin.post(
        "/admin/options/source_channel", data={"label": "抖音", "label_en": "Douyin"}, headers=card_headers(kind)
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section class="card" id="options-source_channel">')
    assert "抖音" in text_of(response.text) and "<html" not in response.text

    assert (await labels(kind))[-1] == "抖音"
    added = await entry(kind, "抖音")
    audit = await audit_rows(added["id"])
    assert audit[0]["action"] == "create"
    assert audit[0]["actor"] == people["admin"].account_id
    assert audit[0]["diff"]["label"] == [None, "抖音"]


async def test_adding_without_javascript_redirects_back_to_the_list(admin: AsyncTestClient) -> None:
    response = await admin.post(
        "/admin/options/industry", data={"label": "地质勘查", "label_en": "Geological survey"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/options#options-industry"
    assert "地质勘查" in await labels(OptionKind.industry)


LONG_FAIR = "中国（昆明）国际工程勘察设计博览会暨西南地区矿业、水利水电与交通基础设施建设投资合作洽谈会第二十届年会"
LONG_ENGLISH = "Recommendation by an industry association we are a member of"


@pytest.mark.parametrize(
    ("label", "label_en", "field", "message"),
    [
        ("", "Exhibition", "label", _("Enter a name.")),
        ("展会", "Exhibition", "label", _("This list already has an entry with this name.")),
        (LONG_FAIR, "Expo", "label", _("At most %(n)s characters.", n=50)),
        ("行业协会", LONG_ENGLISH, "label_en", _("At most %(n)s characters.", n=50)),
    ],
)
async def test_bad_labels_are_refused_beside_the_field_with_the_input_kept(
    admin: AsyncTestClient, label: str, label_en: str, field: str, message: str
) -> None:
    kind = OptionKind.source_channel
    before = await labels(kind, include_inactive=True)
    response = await admin.post(
        "/admin/options/source_channel", data={"label": label, "label_en": label_en}, headers=card_headers(kind)
    )
    assert response.status_code == 422
    assert "<html" not in response.text
    error_id = f"new-source_channel-{field}-error"
    assert f'<span class="field-error" id="{error_id}">{message}</span>' in response.text
    assert f'aria-invalid="true" aria-describedby="{error_id}"' in response.text
    assert f'value="{label_en}"' in response.text
    if label:
        assert f'value="{label}"' in response.text
    assert await labels(kind, include_inactive=True) == before


async def test_plain_form_error_shows_the_whole_page_with_the_message(admin: AsyncTestClient) -> None:
    response = await admin.post("/admin/options/budget_band", data={"label": "5万以下", "label_en": "Under 50k"})
    assert response.status_code == 422
    assert "<html" in response.text
    assert 'id="new-budget_band-label-error"' in response.text
    assert 'id="new-industry-label-error"' not in response.text


async def test_admin_renames_an_entry_in_place(admin: AsyncTestClient) -> None:
    kind = OptionKind.source_channel
    chat = await entry(kind, "网站在线咨询")
    form = await admin.get(f"/admin/options/items/{chat['id']}/edit", headers=card_headers(kind))
    assert form.status_code == 200
    assert f'hx-put="/admin/options/items/{chat["id"]}"' in form.text
    assert 'value="网站在线咨询"' in form.text and 'value="Website chat"' in form.text

    saved = await admin.put(
        f"/admin/options/items/{chat['id']}",
        data={"label": "官网在线客服", "label_en": "Website live chat"},
        headers=card_headers(kind),
    )
    assert saved.status_code == 200
    assert "官网在线客服" in text_of(saved.text) and "hx-put" not in saved.text
    renamed = await options.get_option(chat["id"])
    assert (renamed["label"], renamed["label_en"], renamed["active"]) == ("官网在线客服", "Website live chat", True)
    audit = await audit_rows(chat["id"])
    assert audit[-1]["action"] == "update"
    assert audit[-1]["diff"] == {
        "label": ["网站在线咨询", "官网在线客服"],
        "label_en": ["Website chat", "Website live chat"],
    }


async def test_renaming_to_a_name_already_in_the_list_is_refused(admin: AsyncTestClient) -> None:
    kind = OptionKind.industry
    mining = await entry(kind, "矿业")
    response = await admin.put(
        f"/admin/options/items/{mining['id']}",
        data={"label": "房地产开发", "label_en": "Mining and property"},
        headers=card_headers(kind),
    )
    assert response.status_code == 422
    assert (
        f'<span class="field-error" id="option-{mining["id"]}-label-error">'
        f"{_('This list already has an entry with this name.')}</span>"
    ) in response.text
    assert 'value="房地产开发"' in response.text and 'value="Mining and property"' in response.text
    assert (await options.get_option(mining["id"]))["label"] == "矿业"


async def test_renaming_without_javascript(admin: AsyncTestClient) -> None:
    kind = OptionKind.followup_method
    visit = await entry(kind, "拜访")
    page = await admin.get(f"/admin/options/items/{visit['id']}/edit")
    assert "<html" in page.text and f'form="option-{visit["id"]}-form"' in page.text

    refused = await admin.post(f"/admin/options/items/{visit['id']}", data={"label": " ", "label_en": "Visit"})
    assert refused.status_code == 422
    assert "<html" in refused.text and f'id="option-{visit["id"]}-label-error"' in refused.text

    saved = await admin.post(
        f"/admin/options/items/{visit['id']}",
        data={"label": "上门拜访", "label_en": "On-site visit"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/admin/options#options-followup_method"
    assert "上门拜访" in await labels(kind)


async def test_admin_deactivates_and_reactivates_an_entry(admin: AsyncTestClient) -> None:
    kind = OptionKind.source_channel
    fair = await entry(kind, "展会")
    response = await admin.post(
        f"/admin/options/items/{fair['id']}/active", data={"active": "0"}, headers=card_headers(kind)
    )
    assert response.status_code == 200
    assert f'<tr id="option-{fair["id"]}" class="muted">' in response.text
    assert "展会" not in await labels(kind)
    assert "展会" in await labels(kind, include_inactive=True)

    back = await admin.post(f"/admin/options/items/{fair['id']}/active", data={"active": "1"}, follow_redirects=False)
    assert back.status_code == 303
    assert "展会" in await labels(kind)
    assert [row["diff"] for row in await audit_rows(fair["id"])] == [
        {"active": [True, False]},
        {"active": [False, True]},
    ]


async def test_admin_moves_an_entry_up_and_down(admin: AsyncTestClient) -> None:
    kind = OptionKind.budget_band
    assert await labels(kind) == ["5万以下", "5万–20万", "20万–50万", "50万–100万", "100万以上"]
    band = await entry(kind, "20万–50万")

    up = await admin.post(
        f"/admin/options/items/{band['id']}/move", data={"direction": "up"}, headers=card_headers(kind)
    )
    assert up.status_code == 200
    assert await labels(kind) == ["5万以下", "20万–50万", "5万–20万", "50万–100万", "100万以上"]
    shown = text_of(up.text)
    assert shown.index("20万–50万") < shown.index("5万–20万")

    down = await admin.post(
        f"/admin/options/items/{band['id']}/move", data={"direction": "down"}, follow_redirects=False
    )
    assert down.status_code == 303
    assert await labels(kind) == ["5万以下", "5万–20万", "20万–50万", "50万–100万", "100万以上"]
    assert [row["action"] for row in await audit_rows(band["id"])] == ["move", "move"]


async def test_the_first_entry_cannot_move_further_up(admin: AsyncTestClient) -> None:
    kind = OptionKind.budget_band
    cheapest = await entry(kind, "5万以下")
    page = await admin.get("/admin/options")
    assert f'action="/admin/options/items/{cheapest["id"]}/move"' in page.text
    response = await admin.post(
        f"/admin/options/items/{cheapest['id']}/move", data={"direction": "up"}, headers=card_headers(kind)
    )
    assert response.status_code == 200
    assert (await labels(kind))[0] == "5万以下"
    assert await audit_rows(cheapest["id"]) == []


async def test_cancel_shows_the_list_again(admin: AsyncTestClient) -> None:
    response = await admin.get("/admin/options/industry", headers=card_headers(OptionKind.industry))
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section class="card" id="options-industry">')
    plain = await admin.get("/admin/options/industry", follow_redirects=False)
    assert plain.status_code == 303


@pytest.mark.parametrize(
    ("method", "path", "data", "status_code"),
    [
        ("GET", "/admin/options/hobbies", None, 404),
        ("POST", "/admin/options/hobbies", {"label": "钓鱼"}, 404),
        ("GET", "/admin/options/items/424242/edit", None, 404),
        ("PUT", "/admin/options/items/424242", {"label": "钓鱼"}, 404),
        ("POST", "/admin/options/items/424242/active", {"active": "0"}, 404),
        ("POST", "/admin/options/items/424242/move", {"direction": "up"}, 404),
        ("GET", "/admin/options/items/abc/edit", None, 404),
        ("GET", "/admin/options/items/99999999999999999999/edit", None, 400),
    ],
)
async def test_unknown_lists_and_entries_are_not_found(
    admin: AsyncTestClient, method: str, path: str, data: dict[str, str] | None, status_code: int
) -> None:
    response = await admin.request(method, path, data=data)
    assert response.status_code == status_code


async def test_moving_in_an_unknown_direction_is_a_bad_request(admin: AsyncTestClient) -> None:
    industry = await entry(OptionKind.industry, "其他")
    response = await admin.post(f"/admin/options/items/{industry['id']}/move", data={"direction": "sideways"})
    assert response.status_code == 400


@pytest.mark.parametrize("username", ["wangfang", "zhangwei"])
async def test_only_admins_reach_the_option_lists(app: Any, people: dict[str, CurrentUser], username: str) -> None:
    mining = await entry(OptionKind.industry, "矿业")
    async with AsyncTestClient(app=app) as client:
        await log_in(client, username)
        for method, path, data in [
            ("GET", "/admin/options", None),
            ("GET", "/admin/options/industry", None),
            ("POST", "/admin/options/industry", {"label": "博彩", "label_en": "Gambling"}),
            ("GET", f"/admin/options/items/{mining['id']}/edit", None),
            ("PUT", f"/admin/options/items/{mining['id']}", {"label": "采矿", "label_en": "Mining"}),
            ("POST", f"/admin/options/items/{mining['id']}", {"label": "采矿", "label_en": "Mining"}),
            ("POST", f"/admin/options/items/{mining['id']}/active", {"active": "0"}),
            ("POST", f"/admin/options/items/{mining['id']}/move", {"direction": "up"}),
        ]:
            response = await client.request(method, path, data=data, follow_redirects=False)
            assert response.status_code == 403, (method, path)
    assert await AuditLog.count() == 0
    assert (await options.get_option(mining["id"])) == mining
