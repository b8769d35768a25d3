"""Spreadsheet import: reading the files Chinese offices produce, refusing the ones that are no customer list,
checking every row with the customer form's rules, duplicates, the background run, resuming after a crash, undo,
and the console command."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from app.accounts.service import CurrentUser
from app.core.tables import AuditLog, SearchOutbox
from app.customers import normalize
from app.customers import service as customers
from app.customers.tables import Contact, Customer
from app.i18n import _
from app.imports import reader, service
from app.imports.tables import ImportBatch, ImportIssue, ImportRecord, Status
from app.options.tables import OptionItem

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "import"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def xlsx(rows: list[list[Any]]) -> bytes:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def strict_xlsx() -> bytes:
    """A workbook as Excel saves it as "Strict Open XML Spreadsheet": the strict namespaces, the customer list on
    the second sheet (the one open when saved) behind an instructions sheet, shared strings (one of them rich
    text), an inline string, a mobile number typed as a number, a formula and a province merged over two rows."""
    main = "http://purl.oclc.org/ooxml/spreadsheetml/main"
    relationships = "http://purl.oclc.org/ooxml/officeDocument/relationships"
    package = "http://schemas.openxmlformats.org/package/2006/relationships"
    strings = ["客户名称", "手机", "省份", "城市", "昆明华信勘测设计有限公司", "云南省", "昆明市", "个旧市"]
    shared = "".join(f"<si><t>{text}</t></si>" for text in strings) + (
        '<si><r><t>个旧锡业</t></r><r><rPr><b/></rPr><t>勘探公司</t></r><rPh sb="0" eb="2"><t>コ</t></rPh></si>'
    )
    sheet = (
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c>'
        '<c r="C1" t="s"><v>2</v></c><c r="D1" t="s"><v>3</v></c></row>'
        '<row r="2"><c r="A2" t="s"><v>4</v></c><c r="B2"><v>13812345678</v></c>'
        '<c r="C2" t="s"><v>5</v></c><c r="D2" t="s"><v>6</v></c></row>'
        '<row r="3"><c r="A3" t="s"><v>8</v></c><c r="B3" t="inlineStr"><is><t>139-1234-0001</t></is></c>'
        '<c r="C3"/><c r="D3" t="s"><v>7</v></c></row>'
        '<row r="5"><c r="A5" t="str"><f>CONCAT("王","芳")</f><v>王芳</v></c></row>'
    )
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>'
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{package}"><Relationship Id="rId1" Type="{relationships}/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{main}" xmlns:r="{relationships}" conformance="strict">'
            '<bookViews><workbookView activeTab="1"/></bookViews><sheets>'
            '<sheet name="说明" sheetId="1" r:id="rId1"/><sheet name="客户" sheetId="2" r:id="rId2"/>'
            "</sheets></workbook>"
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{package}">'
            f'<Relationship Id="rId1" Type="{relationships}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{relationships}/worksheet" Target="worksheets/sheet2.xml"/>'
            f'<Relationship Id="rId3" Type="{relationships}/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>"
        ),
        "xl/sharedStrings.xml": f'<sst xmlns="{main}" count="9" uniqueCount="9">{shared}</sst>',
        "xl/worksheets/sheet1.xml": (
            f'<worksheet xmlns="{main}"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>填写说明</t></is>'
            "</c></row></sheetData></worksheet>"
        ),
        "xl/worksheets/sheet2.xml": (
            f'<worksheet xmlns="{main}"><sheetData>{sheet}</sheetData>'
            '<mergeCells count="1"><mergeCell ref="C2:C3"/></mergeCells></worksheet>'
        ),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + text)
    return buffer.getvalue()


def csv_bytes(rows: list[list[str]]) -> bytes:
    return ("\r\n".join(",".join(row) for row in rows) + "\r\n").encode("utf-8")


async def channel_id(label: str) -> int:
    row = (
        await OptionItem.select(OptionItem.id)
        .where(OptionItem.label == label, OptionItem.kind == "source_channel")
        .first()
    )
    return row["id"]


async def run_import(user: CurrentUser, content: bytes, name: str = "客户名单.csv", **settings: str) -> dict[str, Any]:
    """Upload, confirm the guessed mapping with these settings, let the worker run it; the batch as the page
    shows it."""
    batch_id = await service.upload(user, name, content)
    batch = await service.get_batch(user, batch_id)
    form = {f"column-{index}": field for index, field in enumerate(batch["mapping"])}
    form.update(settings)
    await service.start(user, batch_id, form)
    assert await service.run_pending() == batch_id
    return await service.get_batch(user, batch_id)


async def undo(user: CurrentUser, batch_id: int) -> dict[str, Any]:
    """Ask for the undo as the page does, let the worker run it; the batch as the page shows it."""
    await service.undo(user, batch_id)
    assert await service.run_pending() == batch_id
    return await service.get_batch(user, batch_id)


async def live_customers() -> list[dict[str, Any]]:
    return await Customer.select().where(Customer.deleted_at.is_null()).order_by(Customer.id)


# ---------------------------------------------------------------------------------------------------------
# Reading files


@pytest.mark.parametrize("name", ["customers-utf8.csv", "customers-utf8-bom.csv", "customers-gbk.csv"])
def test_csv_in_every_encoding_excel_saves_reads_the_same(name: str) -> None:
    sheet = reader.read(fixture(name))
    assert sheet.file_type == "csv"
    assert sheet.headers[:3] == ["客户名称", "联系人", "手机"]
    assert sheet.rows[0] == (2, sheet.rows[0][1])
    assert sheet.rows[0][1][0] == "昆明华信勘测设计有限公司"
    assert len(sheet.rows) == 8


def test_gbk_is_detected_and_a_byte_order_mark_is_not_part_of_the_first_header() -> None:
    assert reader.read(fixture("customers-gbk.csv")).encoding == "gb18030"
    assert reader.read(fixture("customers-utf8-bom.csv")).headers[0] == "客户名称"


def test_a_big5_file_is_not_mistaken_for_gbk_and_undecodable_bytes_are_refused() -> None:
    big5 = "客戶名稱,手機,地址\r\n王芳,13800000000,台北市信義區\r\n李強,13900000000,高雄市\r\n".encode("big5")
    sheet = reader.read(big5)
    assert sheet.encoding == "big5" and sheet.headers[0] == "客戶名稱"
    with pytest.raises(reader.FileRejected):
        reader.read(bytes(range(128, 256)) * 20)


def test_xlsx_title_row_is_skipped_and_merged_cells_fill_every_row_they_cover() -> None:
    sheet = reader.read(fixture("customers-merged-formulas.xlsx"))
    assert sheet.headers == ["客户名称", "手机号码", "省份", "城市", "行业", "备注"]
    by_row = dict(sheet.rows)
    assert by_row[3][:3] == ["个旧锡业勘探公司", "13912340001", "云南省"]
    # 省份 was merged over rows 3–5: the two rows below the value get it too.
    assert by_row[4][2] == "云南省" and by_row[5][2] == "云南省"
    # A formula is read as the formula, so the row can be refused rather than imported with a wrong value.
    assert by_row[7][0].startswith("=")


def test_a_workbook_saved_as_strict_open_xml_reads_like_a_usual_one() -> None:
    sheet = reader.read(strict_xlsx())
    assert sheet.file_type == "xlsx"
    assert sheet.headers == ["客户名称", "手机", "省份", "城市"]
    assert sheet.rows == [
        (2, ["昆明华信勘测设计有限公司", "13812345678", "云南省", "昆明市"]),
        # Rich text is read without its phonetic guide; the merged 省份 fills the row below.
        (3, ["个旧锡业勘探公司", "139-1234-0001", "云南省", "个旧市"]),
        (5, ['=CONCAT("王","芳")']),
    ]


async def test_a_strict_open_xml_workbook_is_imported(people: dict[str, CurrentUser]) -> None:
    batch = await run_import(people["zhangwei"], strict_xlsx(), name="客户名单.xlsx")
    assert batch["status"] == Status.done
    assert (batch["created_count"], batch["invalid_count"]) == (2, 1)
    assert [(row["name"], row["mobile"], row["city"]) for row in await live_customers()] == [
        ("昆明华信勘测设计有限公司", "13812345678", "昆明市"),
        ("个旧锡业勘探公司", "13912340001", "个旧市"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"   \r\n", "empty"),
        (fixture("not-a-spreadsheet.xlsx"), "not a spreadsheet"),
        (fixture("old-excel.xls"), ".xls"),
        (b"PK\x03\x04 this is no zip at all", "not a spreadsheet"),
        ("客户名称,手机\r\n".encode(), "no customers"),
    ],
)
def test_files_that_are_no_customer_list_are_refused_with_a_reason(content: bytes, message: str) -> None:
    from app.i18n import current_language, set_language

    # The messages are read in English here; the language is put back for the tests that follow.
    language = current_language()
    set_language("en")
    try:
        with pytest.raises(reader.FileRejected) as refused:
            reader.read(content)
    finally:
        set_language(language)
    assert message in str(refused.value)


def test_a_10_mb_cell_is_refused_in_csv_and_xlsx() -> None:
    huge = "测" * (5 * 1024 * 1024)
    with pytest.raises(reader.FileRejected):
        reader.read(("客户名称,备注\r\n王芳," + huge + "\r\n").encode())
    # openpyxl cuts a cell at Excel's limit when it writes: the workbook is made with one, then the cell grown.
    made = xlsx([["客户名称", "备注"], ["王芳", "HUGE"]])
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(made)) as source, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as grown:
        for item in source.infolist():
            grown.writestr(item, source.read(item).replace(b"HUGE", "测".encode() * (3 * 1024 * 1024)))
    with pytest.raises(reader.FileRejected):
        reader.read(buffer.getvalue())


def test_an_xlsx_declaring_entities_is_refused() -> None:
    real = xlsx([["客户名称", "手机"], ["王芳", "13800000000"]])
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(real)) as source, zipfile.ZipFile(buffer, "w") as crafted:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                declaration = b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]>'
                head, _, rest = data.partition(b"?>") if data.startswith(b"<?xml") else (b"", b"", data)
                data = head + (b"?>" if head else b"") + declaration + rest
            crafted.writestr(item, data)
    with pytest.raises(reader.FileRejected):
        reader.read(buffer.getvalue())


def test_a_thousand_columns_are_refused() -> None:
    wide = [[f"列{index}" for index in range(1000)], ["x"] * 1000]
    with pytest.raises(reader.FileRejected):
        reader.read(csv_bytes(wide))
    with pytest.raises(reader.FileRejected):
        reader.read(xlsx(wide))


def test_a_zip_bomb_disguised_as_xlsx_is_refused_before_it_is_unpacked() -> None:
    real = xlsx([["客户名称", "手机"], ["王芳", "13800000000"]])
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(real)) as source, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bomb:
        for item in source.infolist():
            bomb.writestr(item, source.read(item))
        # 200 MB of zeros squeezed into a couple of hundred kilobytes.
        with bomb.open("xl/worksheets/padding.xml", "w") as padding:
            chunk = b"\0" * (1024 * 1024)
            for _megabyte in range(200):
                padding.write(chunk)
    assert len(buffer.getvalue()) < 1024 * 1024
    with pytest.raises(reader.FileRejected) as refused:
        reader.read(buffer.getvalue())
    assert str(refused.value) == _("The file unpacks to far more than it holds (a zip bomb?); it is not imported.")


def test_too_many_rows_are_refused() -> None:
    rows = ["客户名称,手机"] + [f"客户{index}," for index in range(reader.MAX_ROWS + 1)]
    with pytest.raises(reader.FileRejected):
        reader.read("\r\n".join(rows).encode())


def test_a_mobile_numbers_verdict_depends_on_its_first_five_digits_only() -> None:
    """The import asks phonenumbers once per five-digit prefix: for every prefix, numbers with the lowest, the
    highest and a middling rest get the same verdict from the installed metadata as the first number would."""
    for prefix in range(10000, 20000):
        verdicts = {
            normalize.mobile_or_none(number) == number
            for number in (f"{prefix}000000", f"{prefix}999999", f"{prefix}358207")
        }
        assert len(verdicts) == 1, prefix
    memo: dict[Any, Any] = {}
    assert service._mainland_mobile("+86 139-1234-5678", memo) == "13912345678"
    assert service._mainland_mobile("13912340000", memo) == "13912340000"
    assert service._mainland_mobile("12012345678", memo) is None


def test_guessed_mapping_from_chinese_and_english_headers() -> None:
    assert service.guess_mapping(
        ["客户名称", "手机号码", "E-mail", "微信号", "所在省份", "城市", "备注", "不认识"]
    ) == [
        "name",
        "mobile",
        "email",
        "wechat",
        "province",
        "city",
        "characteristics",
        "",
    ]
    assert service.guess_mapping(["Name", "Mobile", "Company", "Tel", "Source"]) == [
        "name",
        "mobile",
        "company",
        "phone",
        "source_channel",
    ]
    # Headers in traditional characters, from Taiwan or Hong Kong.
    assert service.guess_mapping(["客戶名稱", "手機號碼", "電話", "備註"]) == [
        "name",
        "mobile",
        "phone",
        "characteristics",
    ]
    # A list of organisations names them under 公司名称: that is the customer's name.
    assert service.guess_mapping(["公司名称", "联系电话"]) == ["name", "mobile"]
    # Beside 联系人, 职务 is the contact's title; without it, the customer's own.
    assert service.guess_mapping(["客户名称", "联系人", "职务", "联系人手机"]) == [
        "name",
        "contact_name",
        "contact_title",
        "mobile",
    ]
    assert service.guess_mapping(["姓名", "职务"]) == ["name", "title"]


# ---------------------------------------------------------------------------------------------------------
# Importing


async def test_import_validates_every_row_and_imports_the_valid_ones(people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    batch = await run_import(wang, fixture("customers-utf8.csv"), source_channel=str(await channel_id("展会")))
    assert batch["status"] == Status.done
    assert batch["total_rows"] == 8
    assert (batch["created_count"], batch["invalid_count"], batch["skipped_count"]) == (4, 3, 1)
    rows = {row["name"]: row for row in await live_customers()}
    huaxin = rows["昆明华信勘测设计有限公司"]
    assert huaxin["mobile"] == "13871000001"
    assert huaxin["email"] == "ljg@huaxin.cn"
    assert huaxin["province"] == "云南省" and huaxin["city"] == "昆明市"
    assert huaxin["origin"] == "external" and huaxin["owner"] == wang.account_id
    assert huaxin["kind"] == "prospect" and huaxin["created_by"] == wang.account_id
    # Full-width digits become a plain mobile number.
    assert rows["曲靖宏达矿业集团"]["mobile"] == "13788740003"
    # The file's own source wins; the batch's channel fills in where the file has none.
    assert rows["大理苍山水利工程有限公司"]["source_channel"] == await channel_id("转介绍")
    assert rows["曲靖宏达矿业集团"]["source_channel"] == await channel_id("展会")
    # A landline in the mobile column goes to the landline field... but this row's province does not exist.
    assert "玉溪新城房地产开发有限公司" not in rows
    issues = await service.issues_of(batch["id"])
    reasons = {(issue["row_number"], issue["column"]): issue["reason"] for issue in issues}
    assert (5, "手机") in reasons and (6, "客户名称") in reasons and (8, "省份") in reasons
    assert "第 2 行" in reasons[(7, "")] or "2" in reasons[(7, "")]


async def test_every_imported_customer_is_audited_and_queued_for_search(people: dict[str, CurrentUser]) -> None:
    batch = await run_import(people["zhangwei"], fixture("customers-gbk.csv"))
    ids = [row["id"] for row in await live_customers()]
    assert len(ids) == batch["created_count"] > 0
    audited = await AuditLog.select(AuditLog.entity_id).where(
        AuditLog.entity == "customer", AuditLog.action == "create"
    )
    assert sorted(row["entity_id"] for row in audited) == sorted(ids)
    queued = await SearchOutbox.select(SearchOutbox.entity_id).where(SearchOutbox.entity == "customer")
    assert set(ids) <= {row["entity_id"] for row in queued}
    # A new customer and the contact person named beside it are one search document, queued once.
    contacts = await Contact.select(Contact.customer).where(Contact.customer.is_in(ids))
    assert contacts and sorted(row["entity_id"] for row in queued) == sorted(ids)


async def test_imported_customers_reach_the_search_index(people: dict[str, CurrentUser], search: Any) -> None:
    from search import engine, query

    await run_import(people["zhangwei"], fixture("customers-utf8.csv"))
    await search.sync()
    ids = await engine.call(query.customer_ids, "华信", "", {}, sort=["updated_ts:desc"], limit=10)
    assert ids == [row["id"] for row in await live_customers() if "华信" in row["name"]]


async def test_xlsx_rows_with_formulas_are_refused_and_merged_provinces_imported(
    people: dict[str, CurrentUser],
) -> None:
    batch = await run_import(people["zhangwei"], fixture("customers-merged-formulas.xlsx"), name="展会.xlsx")
    names = {row["name"]: row for row in await live_customers()}
    assert set(names) == {"个旧锡业勘探公司", "蒙自市自然资源局", "建水县水务局"}
    assert names["建水县水务局"]["province"] == "云南省"
    issues = await service.issues_of(batch["id"])
    assert {issue["row_number"] for issue in issues} == {6, 7}
    assert all("formula" in issue["reason"] or "公式" in issue["reason"] for issue in issues)


async def test_duplicates_of_existing_customers_are_skipped_updated_or_created(
    people: dict[str, CurrentUser],
) -> None:
    zhang = people["zhangwei"]
    existing = await customers.create_customer(
        zhang, {"name": "华信勘测", "mobile": "138-7100-0001", "origin": "own", "city": ""}
    )
    content = csv_bytes([["客户名称", "手机", "城市"], ["昆明华信勘测设计有限公司", "13871000001", "昆明"]])

    skipped = await run_import(zhang, content, policy="skip")
    assert (skipped["created_count"], skipped["skipped_count"]) == (0, 1)
    assert (
        "same mobile" in (await service.issues_of(skipped["id"]))[0]["reason"]
        or "手机" in (await service.issues_of(skipped["id"]))[0]["reason"]
    )

    updated = await run_import(zhang, content, policy="update")
    assert updated["updated_count"] == 1
    row = await Customer.select().where(Customer.id == existing).first()
    assert row["name"] == "昆明华信勘测设计有限公司" and row["city"] == "昆明"
    assert row["origin"] == "own"  # an update brings the file's fields, not the batch's origin

    created = await run_import(zhang, content, policy="create")
    assert created["created_count"] == 1
    assert len(await live_customers()) == 2


async def test_the_person_named_beside_an_organisation_becomes_its_contact(people: dict[str, CurrentUser]) -> None:
    zhang = people["zhangwei"]
    content = csv_bytes(
        [
            ["客户名称", "联系人", "职务", "手机"],
            ["昆明华信勘测设计有限公司", "李娜", "采购经理", "13871000001"],
            # A person on the list: the title is their own.
            ["王建国", "", "总工程师", "13871000002"],
            ["曲靖宏达矿业有限公司", "张" * 101, "", "13871000003"],
        ]
    )
    batch = await run_import(zhang, content)
    assert batch["created_count"] == 2
    organisation, person = await live_customers()
    assert organisation["title"] == "" and person["title"] == "总工程师"
    contacts = await Contact.select(Contact.customer, Contact.name, Contact.title).where(Contact.deleted_at.is_null())
    assert contacts == [{"customer": organisation["id"], "name": "李娜", "title": "采购经理"}]
    audited = await AuditLog.select(AuditLog.customer_id, AuditLog.diff).where(AuditLog.entity == "contact")
    assert [row["customer_id"] for row in audited] == [organisation["id"]]
    [issue] = await service.issues_of(batch["id"])
    assert (issue["row_number"], issue["column"]) == (4, "联系人")


async def test_an_update_adds_a_new_contact_and_its_undo_takes_it_away(people: dict[str, CurrentUser]) -> None:
    zhang = people["zhangwei"]
    existing = await customers.create_customer(
        zhang, {"name": "华信勘测", "mobile": "13871000001", "origin": "own", "city": "昆明"}
    )
    header = ["客户名称", "联系人", "手机", "城市"]
    batch = await run_import(zhang, csv_bytes([header, ["华信勘测", "李娜", "13871000001", "昆明"]]), policy="update")
    assert (batch["created_count"], batch["updated_count"], batch["skipped_count"]) == (0, 1, 0)
    assert await Contact.count().where(Contact.customer == existing, Contact.deleted_at.is_null()) == 1
    # The same person again is no change.
    again = await run_import(zhang, csv_bytes([header, ["华信勘测", "李娜", "13871000001", "昆明"]]), policy="update")
    assert (again["updated_count"], again["skipped_count"]) == (0, 1)

    await undo(zhang, batch["id"])
    assert await Contact.count().where(Contact.customer == existing, Contact.deleted_at.is_null()) == 0
    assert [row["id"] for row in await live_customers()] == [existing]
    removed = await AuditLog.count().where(AuditLog.entity == "contact", AuditLog.action == "delete")
    assert removed == 1


async def test_staff_update_only_customers_in_their_own_scope(people: dict[str, CurrentUser]) -> None:
    theirs = await customers.create_customer(
        people["liqiang"], {"name": "李强的客户", "mobile": "13900000001", "origin": "own"}
    )
    content = csv_bytes([["客户名称", "手机", "备注"], ["李强的客户", "13900000001", "王芳导入"]])
    batch = await run_import(people["wangfang"], content, policy="update")
    assert (batch["updated_count"], batch["skipped_count"]) == (0, 1)
    row = await Customer.select().where(Customer.id == theirs).first()
    assert row["characteristics"] == ""


async def test_staff_import_for_themselves_or_the_pool_only(people: dict[str, CurrentUser]) -> None:
    wang = people["wangfang"]
    batch_id = await service.upload(wang, "a.csv", csv_bytes([["姓名", "手机"], ["王五", "13900000009"]]))
    with pytest.raises(customers.FormErrors) as refused:
        await service.start(wang, batch_id, {"column-0": "name", "owner": str(people["liqiang"].account_id)})
    assert "owner" in refused.value.errors
    await service.start(wang, batch_id, {"column-0": "name", "owner": "pool"})
    await service.run_pending()
    assert (await live_customers())[0]["owner"] is None


async def test_mapping_needs_a_name_column_and_each_field_once(people: dict[str, CurrentUser]) -> None:
    zhang = people["zhangwei"]
    batch_id = await service.upload(zhang, "a.csv", csv_bytes([["姓名", "手机"], ["王五", "13900000009"]]))
    with pytest.raises(customers.FormErrors) as refused:
        await service.start(zhang, batch_id, {"column-0": "", "column-1": "mobile"})
    assert "mapping" in refused.value.errors
    with pytest.raises(customers.FormErrors) as refused:
        await service.start(zhang, batch_id, {"column-0": "name", "column-1": "name"})
    assert "mapping" in refused.value.errors
    with pytest.raises(customers.FormErrors) as refused:
        await service.start(zhang, batch_id, {"column-0": "name", "policy": "merge", "origin": "both"})
    assert {"policy", "origin"} <= set(refused.value.errors)


async def test_a_saved_template_maps_the_next_file_of_the_same_layout(people: dict[str, CurrentUser]) -> None:
    zhang = people["zhangwei"]
    content = csv_bytes([["单位全称", "负责人手机", "说明文字"], ["华信", "13900000001", "x"]])
    batch_id = await service.upload(zhang, "a.csv", content)
    await service.start(
        zhang,
        batch_id,
        {"column-0": "name", "column-1": "mobile", "column-2": "needs", "template_name": "展会名单"},
    )
    saved = await service.templates()
    assert [template["name"] for template in saved] == ["展会名单"]
    headers = ["单位全称", "负责人手机", "说明文字", "新列"]
    assert service.mapping_from_template(headers, saved[0]["mapping"]) == ["name", "mobile", "needs", ""]


async def test_a_file_that_breaks_deep_inside_fails_the_batch_with_nothing_imported(
    people: dict[str, CurrentUser],
) -> None:
    rows = [["客户名称", "手机"]] + [[f"客户{index}", ""] for index in range(20)] + [["坏行", "x" * 40_000]]
    batch = await run_import(people["zhangwei"], csv_bytes(rows))
    assert batch["status"] == Status.failed
    assert batch["message"]
    assert await live_customers() == []


async def test_a_large_file_read_in_a_process_of_its_own_imports_the_same(
    people: dict[str, CurrentUser], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        ["客户名称", "手机", "省份"],
        *([f"测试客户{index:03d}号", f"139{index:08d}", "云南"] for index in range(30)),
    ]
    rows[7][1] = "138-00"
    in_thread = await run_import(people["zhangwei"], xlsx(rows), name="客户.xlsx")
    assert in_thread["status"] == Status.done
    imported = await live_customers()
    await undo(people["zhangwei"], in_thread["id"])
    # Every file counts as large: its rows come from the reading process, some at a time.
    monkeypatch.setattr(reader, "READ_APART_FROM", 0)
    monkeypatch.setattr(reader, "_ROWS_PER_PART", 7)
    apart = await run_import(people["zhangwei"], xlsx(rows), name="客户.xlsx")
    counts = ("total_rows", "valid_rows", "created_count", "invalid_count")
    assert [apart[name] for name in counts] == [in_thread[name] for name in counts] == [30, 29, 29, 1]
    assert [(row["name"], row["mobile"]) for row in await live_customers()] == [
        (row["name"], row["mobile"]) for row in imported
    ]
    assert await service.issues_of(apart["id"]) == await service.issues_of(in_thread["id"])


async def test_a_large_file_that_breaks_deep_inside_fails_the_batch_with_nothing_imported(
    people: dict[str, CurrentUser], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "READ_APART_FROM", 0)
    monkeypatch.setattr(reader, "_ROWS_PER_PART", 7)
    rows = [["客户名称", "手机"]] + [[f"客户{index}", ""] for index in range(20)] + [["坏行", "x" * 40_000]]
    batch = await run_import(people["zhangwei"], csv_bytes(rows))
    assert batch["status"] == Status.failed
    assert batch["message"] == _("A cell holds more than %(n)s characters; this is not a customer list.", n="32,767")
    assert await live_customers() == []


# ---------------------------------------------------------------------------------------------------------
# Crash and resume, undo


def many_rows(count: int, start: int = 0) -> bytes:
    rows = [["客户名称", "手机", "省份"]]
    rows += [[f"测试客户{index:05d}号", f"139{index:08d}", "云南"] for index in range(start, start + count)]
    return csv_bytes(rows)


async def test_an_import_killed_between_chunks_resumes_where_it_stopped(people: dict[str, CurrentUser]) -> None:
    zhang = people["zhangwei"]
    batch_id = await service.upload(zhang, "big.csv", many_rows(1200))
    await service.start(zhang, batch_id, {"column-0": "name", "column-1": "mobile", "column-2": "province"})
    with pytest.raises(service.Interrupted):
        await service.run_pending(stop_after_chunks=1)
    batch = await service.get_batch(zhang, batch_id)
    assert batch["status"] == Status.running and batch["rows_done"] == service.CHUNK
    assert len(await live_customers()) == service.CHUNK
    # A live worker's batch is left alone; one silent for longer than STALE_AFTER is taken over.
    assert await service.run_pending() is None
    await ImportBatch.update({ImportBatch.heartbeat_at: batch["heartbeat_at"] - service.STALE_AFTER * 2}).where(
        ImportBatch.id == batch_id
    )
    assert await service.run_pending() == batch_id
    batch = await service.get_batch(zhang, batch_id)
    assert batch["status"] == Status.done and batch["created_count"] == 1200
    rows = await live_customers()
    assert len(rows) == 1200 and len({row["mobile"] for row in rows}) == 1200
    assert await ImportRecord.count().where(ImportRecord.batch == batch_id) == 1200


async def test_an_interrupted_batch_can_be_undone_after_it_fails(people: dict[str, CurrentUser]) -> None:
    zhang = people["zhangwei"]
    batch_id = await service.upload(zhang, "big.csv", many_rows(700))
    await service.start(zhang, batch_id, {"column-0": "name", "column-1": "mobile"})
    with pytest.raises(service.Interrupted):
        await service.run_pending(stop_after_chunks=1)
    await ImportBatch.update({ImportBatch.status: Status.failed}).where(ImportBatch.id == batch_id)
    await undo(zhang, batch_id)
    assert await live_customers() == []


async def test_undo_deletes_what_was_created_and_restores_what_was_updated(people: dict[str, CurrentUser]) -> None:
    zhang = people["zhangwei"]
    kept = await customers.create_customer(
        zhang, {"name": "华信勘测", "mobile": "13871000001", "needs": "测绘", "origin": "own"}
    )
    content = csv_bytes(
        [
            ["客户名称", "手机", "需求", "城市"],
            ["华信勘测", "13871000001", "矿区测绘", "昆明"],
            ["新客户", "13600000000", "", ""],
        ]
    )
    batch = await run_import(zhang, content, policy="update")
    assert (batch["created_count"], batch["updated_count"]) == (1, 1)
    # Someone edits the updated customer's city after the import: undo leaves that change alone.
    await customers.update_field(zhang, kept, "city", "大理")
    await undo(zhang, batch["id"])
    rows = await live_customers()
    assert [row["id"] for row in rows] == [kept]
    assert rows[0]["needs"] == "测绘" and rows[0]["city"] == "大理"
    assert (await service.get_batch(zhang, batch["id"]))["status"] == Status.undone
    with pytest.raises(customers.FormErrors):
        await service.undo(zhang, batch["id"])
    deleted = await AuditLog.count().where(AuditLog.entity == "customer", AuditLog.action == "delete")
    assert deleted == 1


async def test_an_undo_killed_between_chunks_resumes_and_takes_back_everything_once(
    people: dict[str, CurrentUser], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "UNDO_CHUNK", 500)
    zhang = people["zhangwei"]
    existing = await customers.create_customer(zhang, {"name": "测试客户00000号", "needs": "测绘", "origin": "own"})
    batch = await run_import(zhang, many_rows(1200), policy="update")
    assert (batch["created_count"], batch["updated_count"]) == (1199, 1)
    await service.undo(zhang, batch["id"])
    # Asked for, not yet done: the batch says so and cannot be undone twice.
    asked = await service.get_batch(zhang, batch["id"])
    assert asked["status"] == Status.undoing and asked["undo_total"] == 1200 and asked["progress"] == 0
    assert not service.may_undo(zhang, asked)
    with pytest.raises(customers.FormErrors):
        await service.undo(zhang, batch["id"])
    with pytest.raises(service.Interrupted):
        await service.run_pending(stop_after_chunks=1)
    halfway = await service.get_batch(zhang, batch["id"])
    assert halfway["status"] == Status.undoing and halfway["undo_done"] == 500
    assert halfway["progress"] == 500 * 100 // 1200
    assert len(await live_customers()) == 1200 - 500
    # A live worker's undo is left alone; one silent for longer than STALE_AFTER is taken over.
    assert await service.run_pending() is None
    await ImportBatch.update({ImportBatch.heartbeat_at: halfway["heartbeat_at"] - service.STALE_AFTER * 2}).where(
        ImportBatch.id == batch["id"]
    )
    assert await service.run_pending() == batch["id"]
    done = await service.get_batch(zhang, batch["id"])
    assert done["status"] == Status.undone and done["undone_by"] == zhang.account_id and done["undo_done"] == 1200
    rows = await live_customers()
    assert [row["id"] for row in rows] == [existing] and rows[0]["mobile"] == ""
    deleted = await AuditLog.count().where(AuditLog.entity == "customer", AuditLog.action == "delete")
    assert deleted == 1199
    steps = (
        await AuditLog.select(AuditLog.diff)
        .where(AuditLog.entity == "import_batch")
        .order_by(AuditLog.id)
        .output(load_json=True)
    )
    assert [step["diff"] for step in steps] == [
        {"status": ["done", "undoing"]},
        {"status": ["undoing", "undone"]},
    ]


async def test_the_list_tabs_count_imported_customers_and_forget_them_on_undo(people: dict[str, CurrentUser]) -> None:
    """The tabs' counts come from customer_tally, which the database keeps for every insert — an import's COPY
    of hundreds of customers in one statement too."""
    zhang = people["zhangwei"]
    await customers.create_customer(zhang, {"name": "华信勘测", "mobile": "13871000001", "origin": "own"})
    own = await run_import(zhang, csv_bytes([["客户名称", "手机"], ["昆明水务局", "13871000002"], ["王芳", ""]]))
    await run_import(zhang, csv_bytes([["客户名称"], ["大理州自然资源局"], ["玉溪市交通运输局"]]), owner="pool")

    async def tallied() -> list[tuple[int, str, int]]:
        rows = await Customer.raw("SELECT owner, kind, live FROM customer_tally WHERE live <> 0")
        return sorted((row["owner"], row["kind"], row["live"]) for row in rows)

    async def counted() -> list[tuple[int, str, int]]:
        rows = await Customer.raw(
            "SELECT coalesce(owner, 0) AS owner, kind, count(*) AS live FROM customer WHERE deleted_at IS NULL "
            "GROUP BY coalesce(owner, 0), kind"
        )
        return sorted((row["owner"], row["kind"], row["live"]) for row in rows)

    assert await tallied() == await counted() == [(0, "prospect", 2), (zhang.account_id, "prospect", 3)]
    await undo(zhang, own["id"])
    assert await tallied() == await counted() == [(0, "prospect", 2), (zhang.account_id, "prospect", 1)]


async def test_staff_see_and_undo_only_their_own_imports(people: dict[str, CurrentUser]) -> None:
    batch = await run_import(people["wangfang"], csv_bytes([["姓名"], ["王五"]]))
    with pytest.raises(customers.NotVisible):
        await service.get_batch(people["liqiang"], batch["id"])
    with pytest.raises(customers.NotVisible):
        await service.undo(people["liqiang"], batch["id"])
    assert [row["id"] for row in await service.list_batches(people["zhangwei"])] == [batch["id"]]
    assert await service.list_batches(people["liqiang"]) == []


async def test_issues_are_kept_per_row(people: dict[str, CurrentUser]) -> None:
    batch = await run_import(people["zhangwei"], fixture("customers-utf8-bom.csv"))
    assert await ImportIssue.count().where(ImportIssue.batch == batch["id"]) == 4


# ---------------------------------------------------------------------------------------------------------
# The console command


async def test_kehu_import_runs_the_same_pipeline_in_process(
    people: dict[str, CurrentUser], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import import_file

    path = tmp_path / "展会名单.csv"
    path.write_bytes(fixture("customers-gbk.csv"))
    with pytest.raises(SystemExit):
        await import_file(str(path), "own", "展会", "pool", "skip", "", "nobody")
    await import_file(str(path), "own", "展会", "pool", "skip", "", "zhangwei")
    rows = await live_customers()
    assert len(rows) == 4
    assert {row["origin"] for row in rows} == {"own"} and {row["owner"] for row in rows} == {None}
    batch = (await service.list_batches(people["zhangwei"]))[0]
    assert batch["status"] == Status.done and batch["created_by"] == people["zhangwei"].account_id
    assert "4 created" in capsys.readouterr().out


async def test_kehu_import_refuses_a_bad_file_without_importing(people: dict[str, CurrentUser], tmp_path: Path) -> None:
    from app.cli import import_file

    path = tmp_path / "bad.xlsx"
    path.write_bytes(fixture("not-a-spreadsheet.xlsx"))
    with pytest.raises(SystemExit) as refused:
        await import_file(str(path), "external", "", "", "skip", "", "")
    assert "bad.xlsx" in str(refused.value)
    assert await ImportBatch.count() == 0


async def test_a_worker_process_killed_mid_import_leaves_a_batch_the_next_worker_finishes(
    people: dict[str, CurrentUser],
) -> None:
    """A real `kehu worker` is killed (SIGKILL) while it imports: every committed chunk carries its progress, so
    the restarted worker goes on from there and the file ends up imported once, completely."""
    import asyncio
    import os
    import signal
    import subprocess
    import sys

    zhang = people["zhangwei"]
    total = 20_000
    batch_id = await service.upload(zhang, "big.csv", many_rows(total))
    await service.start(zhang, batch_id, {"column-0": "name", "column-1": "mobile", "column-2": "province"})
    # Its own search settings, unreachable: this worker's search job only backs off.
    env = {**os.environ, "MEILI_URL": "http://127.0.0.1:9", "KEHU_INDEX_PREFIX": "crash_"}
    worker = subprocess.Popen(  # noqa: ASYNC220 - started once, and killed below
        [sys.executable, "-m", "app.cli", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(6000):
            batch = (
                await ImportBatch.select(ImportBatch.rows_done, ImportBatch.status)
                .where(ImportBatch.id == batch_id)
                .first()
            )
            if batch["rows_done"] > 0 or batch["status"] not in (Status.queued, Status.running):
                break
            await asyncio.sleep(0.01)
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.kill()
        worker.wait(timeout=30)
    batch = await service.get_batch(zhang, batch_id)
    if batch["status"] == Status.done:
        pytest.skip("the worker finished the whole file before it could be stopped")
    assert batch["status"] == Status.running
    assert batch["rows_done"] % service.CHUNK == 0
    assert await Customer.count().where(Customer.deleted_at.is_null()) == batch["rows_done"] == batch["created_count"]
    assert await ImportRecord.count().where(ImportRecord.batch == batch_id) == batch["rows_done"]

    await ImportBatch.update({ImportBatch.heartbeat_at: batch["heartbeat_at"] - service.STALE_AFTER * 2}).where(
        ImportBatch.id == batch_id
    )
    assert await service.run_pending() == batch_id
    batch = await service.get_batch(zhang, batch_id)
    assert batch["status"] == Status.done and batch["created_count"] == total
    assert await Customer.count().where(Customer.deleted_at.is_null()) == total
    mobiles = await Customer.select(Customer.mobile).where(Customer.deleted_at.is_null())
    assert len({row["mobile"] for row in mobiles}) == total


async def test_a_name_alone_is_no_duplicate_when_the_mobiles_differ(people: dict[str, CurrentUser]) -> None:
    zhang = people["zhangwei"]
    await customers.create_customer(zhang, {"name": "昆明市水务局", "mobile": "13900000001", "origin": "own"})
    content = csv_bytes(
        [
            ["客户名称", "手机"],
            ["大理市水务局", "13900000002"],  # another city's bureau: imported
            ["曲靖市水务局", "13900000003"],  # and another
            ["昆明市水务局", ""],  # the same name and no mobile to tell them apart: a duplicate
        ]
    )
    batch = await run_import(zhang, content, policy="skip")
    assert (batch["created_count"], batch["skipped_count"]) == (2, 1)


async def test_a_name_alone_is_no_duplicate_of_a_customer_in_another_place(people: dict[str, CurrentUser]) -> None:
    """Without mobiles to tell them apart, the place does: the city column, or the place the name opens with."""
    zhang = people["zhangwei"]
    # The oldest customers of the name are in other cities: the Kunming one must still be found.
    for city in ("玉溪市", "曲靖市"):
        await customers.create_customer(zhang, {"name": "交通运输局", "city": city, "origin": "own"})
    kunming = await customers.create_customer(
        zhang, {"name": "昆明市交通运输局", "province": "云南省", "city": "昆明市", "origin": "own"}
    )
    await customers.create_customer(zhang, {"name": "北海天泽置业有限公司", "city": "北海", "origin": "own"})
    content = csv_bytes(
        [
            ["客户名称", "省份", "城市"],
            ["大理市交通运输局", "", ""],  # another city, from the name: imported
            ["交通运输局", "云南", "昆明"],  # Kunming's, from the columns: a duplicate
            ["昆明天泽置业有限公司", "", ""],  # not the Beihai company: imported
            ["天泽置业有限公司", "", "北海市"],  # the Beihai one: a duplicate
            ["曲靖市水务局", "", ""],  # imported
            ["大理市水务局", "", ""],  # imported: another city than the row before
            ["曲靖水务局", "云南省", ""],  # the first of them again
        ]
    )
    batch = await run_import(zhang, content, policy="skip")
    assert (batch["created_count"], batch["skipped_count"]) == (4, 3)
    reasons = [issue["reason"] for issue in await service.issues_of(batch["id"])]
    assert reasons == [
        _("Already in Kehu (%(reason)s): %(name)s.", reason=_("similar name"), name="昆明市交通运输局"),
        _("Already in Kehu (%(reason)s): %(name)s.", reason=_("similar name"), name="北海天泽置业有限公司"),
        _("Same customer as row %(n)s of the file.", n=6),
    ]
    created = {row["name"] for row in await live_customers()}
    assert {"大理市交通运输局", "昆明天泽置业有限公司", "曲靖市水务局", "大理市水务局"} <= created
    assert kunming in {row["id"] for row in await live_customers()}


async def test_a_finished_batch_lets_go_of_its_file_and_abandoned_uploads_are_dropped(
    people: dict[str, CurrentUser],
) -> None:
    from datetime import timedelta

    from app.imports.tables import ImportFile

    zhang = people["zhangwei"]
    await run_import(zhang, csv_bytes([["姓名"], ["王五"]]))
    assert await ImportFile.count() == 0
    left = await service.upload(zhang, "a.csv", csv_bytes([["姓名"], ["赵六"]]))
    batch = await service.get_batch(zhang, left)
    await ImportBatch.update({ImportBatch.created_at: batch["created_at"] - timedelta(days=2)}).where(
        ImportBatch.id == left
    )
    await service.upload(zhang, "b.csv", csv_bytes([["姓名"], ["钱七"]]))
    assert not await ImportBatch.exists().where(ImportBatch.file_name == "a.csv")
    assert await ImportFile.count() == 1


async def test_a_row_with_several_mistakes_is_one_refused_row_with_each_mistake_listed(
    people: dict[str, CurrentUser],
) -> None:
    batch = await run_import(people["zhangwei"], csv_bytes([["姓名", "手机", "省份"], ["王五", "123", "火星"]]))
    assert batch["invalid_count"] == 1
    issues = await service.issues_of(batch["id"])
    assert [(issue["row_number"], issue["column"]) for issue in issues] == [(2, "手机"), (2, "省份")]
