"""The import pages over HTTP: upload, mapping with its refusals, progress polling, result, error download,
undo, templates — with permissions and CSRF."""

from __future__ import annotations

import io

import pytest
from litestar.testing import AsyncTestClient
from openpyxl import load_workbook

from app.accounts.service import CurrentUser
from app.customers.tables import Customer
from app.imports import service
from app.imports.tables import ImportBatch, Status
from tests.conftest import text_of
from tests.test_imports import csv_bytes, fixture

pytestmark = pytest.mark.db

CSV = "text/csv"


async def upload(client: AsyncTestClient, content: bytes, name: str = "客户名单.csv") -> int:
    response = await client.post("/imports", files={"file": (name, content, CSV)}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


async def test_every_user_finds_import_in_the_header(staff: AsyncTestClient) -> None:
    page = await staff.get("/customers")
    assert 'href="/imports"' in page.text
    page = await staff.get("/imports")
    assert page.status_code == 200 and 'name="file"' in page.text


async def test_upload_shows_the_first_rows_with_guessed_columns(staff: AsyncTestClient) -> None:
    batch_id = await upload(staff, fixture("customers-gbk.csv"))
    page = await staff.get(f"/imports/{batch_id}")
    assert page.status_code == 200
    assert "昆明华信勘测设计有限公司" in page.text
    assert '<option value="mobile" selected>' in page.text
    assert '<option value="name" selected>' in page.text


async def test_a_bad_file_is_refused_beside_the_field(staff: AsyncTestClient) -> None:
    for content, name in ((b"", "empty.csv"), (fixture("not-a-spreadsheet.xlsx"), "a.xlsx")):
        response = await staff.post("/imports", files={"file": (name, content, CSV)})
        assert response.status_code == 422
        assert 'class="field-error"' in response.text
    response = await staff.post("/imports", data={"nothing": "here"})
    assert response.status_code == 422
    assert await ImportBatch.count() == 0


async def test_a_file_over_the_upload_limit_is_refused_with_a_message_that_says_so(staff: AsyncTestClient) -> None:
    from app.imports.routes import UPLOAD_BODY_LIMIT

    too_large = b"x" * (UPLOAD_BODY_LIMIT + 1)
    page = await staff.post("/imports", files={"file": ("big.csv", too_large, CSV)})
    assert page.status_code == 413
    assert "太大" in text_of(page.text)
    # From the page's htmx form the message comes as a notice, not a page swapped in for the form.
    fragment = await staff.post("/imports", files={"file": ("big.csv", too_large, CSV)}, headers={"HX-Request": "true"})
    assert fragment.status_code == 413 and fragment.headers["HX-Retarget"] == "#notices"
    assert "太大" in text_of(fragment.text)
    assert await ImportBatch.count() == 0


async def test_a_refused_mapping_keeps_what_the_user_chose(staff: AsyncTestClient) -> None:
    batch_id = await upload(staff, csv_bytes([["姓名", "手机"], ["王五", "13900000009"]]))
    response = await staff.post(
        f"/imports/{batch_id}/start",
        data={"column-0": "", "column-1": "mobile", "template_name": "我的<模板>", "policy": "update"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    assert 'id="mapping-error"' in response.text
    assert '<option value="mobile" selected>' in response.text
    assert 'value="我的&lt;模板&gt;"' in response.text
    assert 'value="update" checked' in response.text


async def test_import_runs_shows_progress_result_and_undo(
    staff: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    batch_id = await upload(staff, fixture("customers-utf8.csv"))
    form = {
        f"column-{index}": value
        for index, value in enumerate(
            service.guess_mapping(
                ["客户名称", "联系人", "手机", "邮箱", "微信", "省份", "城市", "地址", "来源", "行业", "需求", "备注"]
            )
        )
    }
    form.update(origin="external", owner="pool", policy="skip")
    response = await staff.post(f"/imports/{batch_id}/start", data=form, follow_redirects=False)
    assert response.status_code == 303
    waiting = await staff.get(f"/imports/{batch_id}")
    assert 'id="import-progress"' in waiting.text and 'hx-trigger="every 2s"' in waiting.text
    poll = await staff.get(f"/imports/{batch_id}/progress?seen=queued-0-0-0")
    assert poll.status_code == 204

    assert await service.run_pending() == batch_id
    finished = await staff.get(f"/imports/{batch_id}/progress?seen=queued-0-0-0")
    assert finished.headers.get("hx-refresh") == "true"
    result = await staff.get(f"/imports/{batch_id}")
    assert "12345" in text_of(result.text) and 'id="undo-import"' in result.text
    assert await Customer.count().where(Customer.owner.is_null(), Customer.deleted_at.is_null()) == 4

    download = await staff.get(f"/imports/{batch_id}/issues?format=xlsx")
    assert download.status_code == 200
    sheet = load_workbook(io.BytesIO(download.content)).active
    assert sheet.max_row == 1 + 4  # header and the four rows not imported
    csv = await staff.get(f"/imports/{batch_id}/issues?format=csv")
    assert csv.content.startswith("\ufeff".encode()) and "省份".encode() in csv.content
    assert (await staff.get(f"/imports/{batch_id}/issues?format=pdf")).status_code == 400

    response = await staff.post(f"/imports/{batch_id}/undo", follow_redirects=False)
    assert response.status_code == 303
    # The worker takes it back; meanwhile the page shows how far it got.
    undoing = await staff.get(f"/imports/{batch_id}")
    assert "撤销中" in undoing.text and 'id="import-progress"' in undoing.text
    assert 'id="undo-import"' not in undoing.text
    assert await service.run_pending() == batch_id
    assert (await staff.get(f"/imports/{batch_id}/progress?seen=undoing-0-0-0")).headers.get("hx-refresh") == "true"
    assert await Customer.count().where(Customer.deleted_at.is_null()) == 0
    again = await staff.post(f"/imports/{batch_id}/undo")
    assert again.status_code == 422


async def test_another_staffs_import_is_404(staff: AsyncTestClient, other_staff: AsyncTestClient) -> None:
    batch_id = await upload(other_staff, csv_bytes([["姓名", "手机"], ["王五", "13900000009"]]))
    for method, url in (
        ("GET", f"/imports/{batch_id}"),
        ("GET", f"/imports/{batch_id}/progress"),
        ("GET", f"/imports/{batch_id}/issues?format=csv"),
        ("POST", f"/imports/{batch_id}/start"),
        ("POST", f"/imports/{batch_id}/undo"),
    ):
        response = await staff.request(method, url, data={"column-0": "name"})
        assert response.status_code == 404, (method, url)


async def test_supervisors_see_every_import_and_may_import_for_anyone(
    staff: AsyncTestClient, supervisor: AsyncTestClient, people: dict[str, CurrentUser]
) -> None:
    batch_id = await upload(staff, csv_bytes([["姓名", "手机"], ["王五", "13900000009"]]))
    assert (await supervisor.get(f"/imports/{batch_id}")).status_code == 200
    mine = await upload(supervisor, csv_bytes([["姓名", "手机"], ["赵六", "13900000008"]]))
    li = people["liqiang"].account_id
    response = await supervisor.post(
        f"/imports/{mine}/start",
        data={"column-0": "name", "column-1": "mobile", "owner": str(li)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    await service.run_pending()
    assert (await Customer.select(Customer.owner).first())["owner"] == li


async def test_staff_cannot_import_for_a_colleague(staff: AsyncTestClient, people: dict[str, CurrentUser]) -> None:
    batch_id = await upload(staff, csv_bytes([["姓名", "手机"], ["王五", "13900000009"]]))
    response = await staff.post(
        f"/imports/{batch_id}/start", data={"column-0": "name", "owner": str(people["liqiang"].account_id)}
    )
    assert response.status_code == 422
    assert (await ImportBatch.select(ImportBatch.status).first())["status"] == Status.draft


async def test_templates_are_saved_applied_and_deleted(staff: AsyncTestClient, other_staff: AsyncTestClient) -> None:
    batch_id = await upload(staff, csv_bytes([["单位全称", "负责人手机"], ["华信", "13900000001"]]))
    await staff.post(
        f"/imports/{batch_id}/start", data={"column-0": "name", "column-1": "mobile", "template_name": "展会名单"}
    )
    template = (await service.templates())[0]
    second = await upload(staff, csv_bytes([["单位全称", "负责人手机"], ["大理", "13900000002"]]))
    page = await staff.get(f"/imports/{second}?template={template['id']}")
    assert "展会名单" in page.text and '<option value="mobile" selected>' in page.text
    refused = await other_staff.post(f"/imports/templates/{template['id']}/delete")
    assert refused.status_code == 404
    response = await staff.post(f"/imports/templates/{template['id']}/delete", follow_redirects=False)
    assert response.status_code == 303
    assert await service.templates() == []


async def test_import_forms_need_the_csrf_token(staff: AsyncTestClient) -> None:
    del staff.headers["x-csrftoken"]
    response = await staff.post("/imports", files={"file": ("a.csv", b"a,b\r\n1,2\r\n", CSV)})
    assert response.status_code == 403
    assert await ImportBatch.count() == 0


async def test_malformed_uploads_get_4xx(staff: AsyncTestClient) -> None:
    for body, content_type in (
        (b"--x\r\nbroken", "multipart/form-data; boundary=x"),
        (b"--x\r\nbroken", "multipart/form-data"),
        (b"\xff\xfe\x00", "application/x-www-form-urlencoded"),
    ):
        response = await staff.post("/imports", content=body, headers={"content-type": content_type})
        assert 400 <= response.status_code < 500, (content_type, response.status_code)
    assert (await staff.get("/imports/99999999999999")).status_code in (400, 404)
