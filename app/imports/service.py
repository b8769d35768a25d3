"""Spreadsheet import: upload and preview, column mapping (guessed from the headers, or a saved template), the
background run that validates every row with the customer form's rules, finds duplicates with the duplicate
warning's normalisation and writes in chunks, and the undo of a whole batch.

A batch is never half done: every chunk commits its customers, their audit and outbox rows and the batch's
progress in one transaction, so a worker that dies between chunks leaves a batch that the next worker resumes
from where it stopped (and that can be undone at any point, since every write is recorded)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from app.accounts.service import CurrentUser
from app.accounts.tables import Account
from app.core import service as core
from app.customers import normalize
from app.customers.service import FIELDS, FormErrors, NotVisible, clean_field
from app.customers.tables import Contact, Customer, Kind, Origin
from app.db import insert_rows, is_sqlite, select_in, transaction
from app.duplicates.finder import Place, city_spellings, elsewhere, place_of, place_of_record
from app.i18n import _
from app.imports import reader
from app.imports.tables import ImportBatch, ImportFile, ImportIssue, ImportRecord, ImportTemplate, Policy, Status
from app.options.tables import OptionItem, OptionKind

log = logging.getLogger("kehu.imports")

# Rows per transaction: large enough that a 100,000-row file is 200 commits, small enough that the web requests
# waiting for SQLite's write lock between two chunks wait a fraction of a second.
CHUNK = 500
# Records an undo takes back per transaction. Taking one back is far cheaper than importing a row: 500 records held
# SQLite's write lock for about 25 ms, so the undo of 97,000 customers took 14 s, 5.8 s of it in the pauses
# between chunks. This many hold it about as long as an import's chunk.
UNDO_CHUNK = 2_000
PREVIEW_ROWS = 8
# Earlier rows of the file kept per key to compare a row with: a name in many places (交通运输局) or with many
# mobiles keeps the first this many, so that checking a file does not grow with its square.
SEEN_PER_KEY = 20
# A running batch whose worker has not been heard of for this long is taken over by another (or the restarted)
# worker. Heartbeats come every HEARTBEAT seconds while a batch runs, reading the file included.
STALE_AFTER = timedelta(seconds=120)
HEARTBEAT = 20
POLL_SECONDS = 2.0
WRITER_PAUSE = 0.03
# SQLite page cache of the importing connection, in KiB. Each new customer goes into some twenty indexes, and with
# the default 2 MB the later inserts read most of their pages back from the file: 100,000 rows took 63 s with
# it, 55 s with this. It stays with the worker's connection after the import.
WRITER_CACHE_KIB = 131_072
# SQLite copies the write-ahead log into the database file once it holds this many pages, at the commit that
# passes it. A chunk writes more than the default 1,000, so every chunk's commit copied its pages, the index
# pages the next chunk writes again included: COMMIT took 2.5-3.0 s of a 20,000-row import into 39,000
# customers, 1.8 s with 4,096 pages (16 MB of log). Another writer committing meanwhile may do the copy
# instead, at most that much. Like the cache size, it stays with the worker's connection after the import.
WRITER_CHECKPOINT_PAGES = 4_096
# PostgreSQL: new customers before the planner's statistics are refreshed again, at the least (see
# _Writer._refresh_statistics).
ANALYZE_AFTER = 1_000
TEMPLATE_NAME_LENGTH = 60
DRAFTS_KEPT = timedelta(days=1)

# The customer fields a column can go to, in the order they are checked (a province before its city).
IMPORTABLE = [
    "name",
    "company",
    "title",
    "mobile",
    "phone",
    "email",
    "wechat",
    "province",
    "city",
    "address",
    "industry",
    "source_channel",
    "budget_band",
    "needs",
    "characteristics",
    "consumption_habits",
    "utm_source",
    "utm_medium",
    "utm_campaign",
]

# Columns that describe the person to talk to at an organisation (联系人): a contact of the customer.
CONTACT_FIELDS = {"contact_name": lambda: _("Contact person"), "contact_title": lambda: _("Contact's title")}
CONTACT_TEXT_MAX = 100
COLUMN_FIELDS = [*IMPORTABLE, *CONTACT_FIELDS]

# Header names as people write them, per field; compared with punctuation, spaces and case removed. Exact
# names first; then a header containing one of the longer Chinese names (e.g. "客户手机号码").
ALIASES: dict[str, list[str]] = {
    "name": [
        "客户名称",
        "客户名",
        "客户",
        "姓名",
        "名称",
        "名字",
        "单位名称",
        "单位",
        "企业名称",
        "客户姓名",
        "name",
        "customer",
        "customername",
        "fullname",
        "clientname",
    ],
    "company": [
        "公司",
        "公司名称",
        "所在公司",
        "工作单位",
        "所属公司",
        "company",
        "companyname",
        "organization",
        "organisation",
        "employer",
    ],
    "title": ["职务", "职位", "头衔", "title", "position", "jobtitle"],
    "mobile": [
        "手机",
        "手机号",
        "手机号码",
        "移动电话",
        "联系电话",
        "联系方式",
        "mobile",
        "mobilephone",
        "cellphone",
        "cell",
        "mobileno",
    ],
    "phone": [
        "电话",
        "座机",
        "固定电话",
        "办公电话",
        "固话",
        "电话号码",
        "tel",
        "telephone",
        "phone",
        "landline",
        "officephone",
    ],
    "email": ["邮箱", "电子邮箱", "电子邮件", "邮件", "邮箱地址", "email", "e-mail", "mail", "emailaddress"],
    "wechat": ["微信", "微信号", "wechat", "weixin", "wechatid", "wx"],
    "province": ["省份", "省", "所在省份", "省区", "province", "state"],
    "city": ["城市", "市", "所在城市", "地市", "city"],
    "address": ["地址", "详细地址", "联系地址", "通讯地址", "公司地址", "单位地址", "address"],
    "source_channel": ["来源", "客户来源", "来源渠道", "渠道", "source", "channel", "sourcechannel", "leadsource"],
    "industry": ["行业", "所属行业", "行业类别", "industry", "sector"],
    "budget_band": ["预算", "预算范围", "价格承受能力", "budget", "budgetband"],
    "needs": ["需求", "客户需求", "需求描述", "needs", "need", "requirements", "requirement"],
    "characteristics": [
        "备注",
        "特征",
        "说明",
        "标签",
        "客户特征",
        "notes",
        "note",
        "remarks",
        "remark",
        "tags",
        "memo",
        "comments",
    ],
    "consumption_habits": ["消费习惯", "consumptionhabits"],
    "contact_name": ["联系人", "联系人姓名", "联系人名称", "对接人", "contact", "contactperson", "contactname"],
    "contact_title": ["联系人职务", "联系人职位", "contacttitle"],
    "utm_source": ["utmsource"],
    "utm_medium": ["utmmedium"],
    "utm_campaign": ["utmcampaign", "campaign", "活动"],
}
_STRIP = str.maketrans("", "", " _-.:：*()（）[]【】/\\")
# Traditional characters of the header words above (files from Taiwan and Hong Kong), as simplified ones.
_SIMPLIFIED = str.maketrans(
    "戶稱機電話郵聯繫係職區們來業註說標籤價預質務築資備網類單號碼縣門與",
    "户称机电话邮联系系职区们来业注说标签价预质务筑资备网类单号码县门与",
)


def _header_key(header: str) -> str:
    return normalize.clean_text(header).lower().translate(_STRIP).translate(_SIMPLIFIED)


def guess_mapping(headers: list[str]) -> list[str]:
    """For each column the customer field its header names, or "" — each field taken by one column at most."""
    keys = [_header_key(header) for header in headers]
    mapping = [""] * len(headers)
    taken: set[str] = set()
    exact = {alias.translate(_STRIP): name for name, aliases in ALIASES.items() for alias in aliases}
    for index, key in enumerate(keys):
        name = exact.get(key)
        if name and name not in taken:
            mapping[index] = name
            taken.add(name)
    for index, key in enumerate(keys):
        if mapping[index]:
            continue
        for name, aliases in ALIASES.items():
            if name in taken:
                continue
            if any(len(alias) >= 2 and not alias.isascii() and alias in key for alias in aliases):
                mapping[index] = name
                taken.add(name)
                break
    # A list of organisations names them under 公司 with no other name column: that is the customer's name.
    if "name" not in taken and "company" in taken:
        mapping[mapping.index("company")] = "name"
    # Beside a 联系人 column, 职务 is that person's title, not the organisation's.
    if "contact_name" in taken and "title" in taken and "contact_title" not in taken:
        mapping[mapping.index("title")] = "contact_title"
    return mapping


def mapping_from_template(headers: list[str], template: dict[str, str]) -> list[str]:
    """A saved template's mapping applied to this file's headers; headers it does not name keep the guess."""
    by_key = {_header_key(header): name for header, name in template.items() if name in COLUMN_FIELDS or name == ""}
    guessed = guess_mapping(headers)
    mapping = [by_key.get(_header_key(header), guessed[index]) for index, header in enumerate(headers)]
    seen: set[str] = set()
    for index, name in enumerate(mapping):
        if name and name in seen:
            mapping[index] = ""
        seen.add(name)
    return mapping


def field_choices() -> list[tuple[str, str]]:
    return [
        *((name, FIELDS[name].label()) for name in IMPORTABLE),
        *((name, label()) for name, label in CONTACT_FIELDS.items()),
    ]


# ---------------------------------------------------------------------------------------------------------
# Reading batches


def _visible_batches(user: CurrentUser) -> Any:
    """Supervisors see every import; staff see their own."""
    if user.is_supervisor:
        return ImportBatch.id > 0
    return ImportBatch.created_by == user.account_id


_BATCH_COLUMNS = (
    ImportBatch.all_columns(exclude=[ImportBatch.preview]),
    ImportBatch.created_by.name.as_alias("created_by_name"),
    ImportBatch.owner.name.as_alias("owner_name"),
    ImportBatch.source_channel.label.as_alias("source_channel_label"),
    ImportBatch.source_channel.label_en.as_alias("source_channel_label_en"),
)


async def list_batches(user: CurrentUser, limit: int = 50) -> list[dict[str, Any]]:
    return (
        await ImportBatch.select(*_BATCH_COLUMNS)
        .where(_visible_batches(user), ImportBatch.status != Status.draft)
        .order_by(ImportBatch.id, ascending=False)
        .limit(limit)
        .output(load_json=True)
    )


async def get_batch(user: CurrentUser, batch_id: int) -> dict[str, Any]:
    row = (
        await ImportBatch.select(*_BATCH_COLUMNS, ImportBatch.preview)
        .where(ImportBatch.id == batch_id, _visible_batches(user))
        .output(load_json=True)
        .first()
    )
    if row is None:
        raise NotVisible(batch_id)
    row["progress"] = progress_of(row)
    return row


def progress_of(batch: dict[str, Any]) -> int:
    """Per cent done, for the progress bar."""
    if batch["status"] in (Status.done, Status.undone):
        return 100
    if batch["status"] == Status.undoing:
        return min(100, batch["undo_done"] * 100 // batch["undo_total"]) if batch["undo_total"] else 0
    if not batch["valid_rows"]:
        return 0
    return min(100, batch["rows_done"] * 100 // batch["valid_rows"])


ISSUES_SHOWN = 200


async def issues_of(batch_id: int, limit: int | None = ISSUES_SHOWN) -> list[dict[str, Any]]:
    query = (
        ImportIssue.select(ImportIssue.row_number, ImportIssue.column, ImportIssue.value, ImportIssue.reason)
        .where(ImportIssue.batch == batch_id)
        .order_by(ImportIssue.row_number)
        .order_by(ImportIssue.id)
    )
    return await (query.limit(limit) if limit else query)


async def issue_count(batch_id: int) -> int:
    return await ImportIssue.count().where(ImportIssue.batch == batch_id)


# ---------------------------------------------------------------------------------------------------------
# Upload and mapping


async def upload(user: CurrentUser, file_name: str, content: bytes) -> int:
    """Keep an uploaded file as a draft batch with its header, first rows and guessed mapping. Raises
    reader.FileRejected with the reason when it cannot be imported."""
    sheet = await asyncio.to_thread(reader.read, content, limit=PREVIEW_ROWS)
    file_name = normalize.clean_text(file_name)[:200] or "import"
    async with transaction():
        # Files uploaded and left without choosing their columns are dropped after a day.
        abandoned = ImportBatch.select(ImportBatch.id).where(
            ImportBatch.status == Status.draft, ImportBatch.created_at < datetime.now(UTC) - DRAFTS_KEPT
        )
        await ImportFile.delete().where(ImportFile.batch.is_in(abandoned))
        await ImportBatch.delete().where(
            ImportBatch.status == Status.draft, ImportBatch.created_at < datetime.now(UTC) - DRAFTS_KEPT
        )
        batch = ImportBatch(
            created_by=user.account_id,
            file_name=file_name,
            file_type=sheet.file_type,
            headers=sheet.headers,
            mapping=guess_mapping(sheet.headers),
            preview=[[number, cells] for number, cells in sheet.rows],
            owner=user.account_id,
            status=Status.draft,
        )
        await batch.save()
        await ImportFile.insert(ImportFile(batch=batch.id, content=content))
    return batch.id


@dataclass
class Settings:
    """What the mapping form chose, cleaned."""

    mapping: list[str]
    origin: str
    source_channel: int | None
    owner: int | None
    policy: str
    template_name: str = ""


async def clean_settings(user: CurrentUser, headers: list[str], data: dict[str, str]) -> Settings:
    """The mapping form's choices, or FormErrors with a message per field ("mapping" for the columns)."""
    errors: dict[str, str] = {}
    mapping = []
    for index in range(len(headers)):
        name = data.get(f"column-{index}", "")
        mapping.append(name if name in COLUMN_FIELDS else "")
    doubled = sorted({name for name in mapping if name and mapping.count(name) > 1})
    if doubled:
        errors["mapping"] = _(
            "Each field takes one column; %(fields)s is chosen more than once.",
            fields="、".join(dict(field_choices())[name] for name in doubled),
        )
    elif "name" not in mapping:
        errors["mapping"] = _("Choose the column that holds the customer's name.")
    origin = data.get("origin", Origin.external.value)
    if origin not in {item.value for item in Origin}:
        errors["origin"] = _("Choose own or external data.")
    channel: int | None = None
    raw_channel = data.get("source_channel", "").strip()
    if raw_channel:
        if not raw_channel.isdigit() or len(raw_channel) > 9:
            errors["source_channel"] = _("Choose an entry from the list.")
        else:
            channel = int(raw_channel)
            if not await OptionItem.exists().where(
                OptionItem.id == channel,
                OptionItem.kind == OptionKind.source_channel.value,
                OptionItem.active.eq(True),
            ):
                errors["source_channel"] = _("Choose an entry from the list.")
    owner: int | None = user.account_id
    raw_owner = data.get("owner", "").strip()
    if raw_owner == "pool":
        owner = None
    elif raw_owner and raw_owner != str(user.account_id):
        if not user.is_supervisor:
            errors["owner"] = _("Staff import customers for themselves or into the public pool.")
        elif not raw_owner.isdigit() or len(raw_owner) > 9:
            errors["owner"] = _("Choose an active staff member.")
        else:
            owner = int(raw_owner)
            if not await Account.exists().where(Account.id == owner, Account.user.active.eq(True)):
                errors["owner"] = _("Choose an active staff member.")
    policy = data.get("policy", Policy.skip.value)
    if policy not in {item.value for item in Policy}:
        errors["policy"] = _("Choose what to do with customers already in Kehu.")
    template_name = normalize.clean_text(data.get("template_name", ""))
    if len(template_name) > TEMPLATE_NAME_LENGTH:
        errors["template_name"] = _("At most %(n)s characters.", n=TEMPLATE_NAME_LENGTH)
    if errors:
        raise FormErrors(errors)
    return Settings(mapping, origin, channel, owner, policy, template_name)


async def start(user: CurrentUser, batch_id: int, data: dict[str, str], *, in_process: bool = False) -> None:
    """Confirm a draft batch's mapping and settings and hand it to the worker — or, `in_process`, mark it as
    running here (the console command runs it itself; should it die, a worker takes over). Raises NotVisible or
    FormErrors."""
    batch = await get_batch(user, batch_id)
    if batch["status"] != Status.draft:
        raise FormErrors({"mapping": _("This import has already started.")})
    settings = await clean_settings(user, batch["headers"], data)
    async with transaction():
        updated = (
            await ImportBatch.update(
                {
                    ImportBatch.mapping: settings.mapping,
                    ImportBatch.origin: settings.origin,
                    ImportBatch.source_channel: settings.source_channel,
                    ImportBatch.owner: settings.owner,
                    ImportBatch.policy: settings.policy,
                    ImportBatch.status: Status.running if in_process else Status.queued,
                    ImportBatch.heartbeat_at: datetime.now(UTC) if in_process else None,
                }
            )
            .where(ImportBatch.id == batch_id, ImportBatch.status == Status.draft)
            .returning(ImportBatch.id)
        )
        if not updated:
            raise FormErrors({"mapping": _("This import has already started.")})
        if settings.template_name:
            await _save_template(user, settings.template_name, batch["headers"], settings.mapping)


async def templates() -> list[dict[str, Any]]:
    """The saved mappings, everyone's: one person sets up the layout of the exhibition list, all use it."""
    return (
        await ImportTemplate.select(
            ImportTemplate.id, ImportTemplate.name, ImportTemplate.mapping, ImportTemplate.owner.name.as_alias("by")
        )
        .order_by(ImportTemplate.name)
        .output(load_json=True)
    )


async def template_mapping(template_id: int) -> dict[str, str] | None:
    row = (
        await ImportTemplate.select(ImportTemplate.mapping)
        .where(ImportTemplate.id == template_id)
        .output(load_json=True)
        .first()
    )
    return row["mapping"] if row else None


async def template_by_name(name: str) -> dict[str, str] | None:
    row = (
        await ImportTemplate.select(ImportTemplate.mapping)
        .where(ImportTemplate.name == name)
        .output(load_json=True)
        .first()
    )
    return row["mapping"] if row else None


async def _save_template(user: CurrentUser, name: str, headers: list[str], mapping: list[str]) -> None:
    """Under the user's own name a template of the same name is replaced; call inside a transaction."""
    by_header = {header: field_name for header, field_name in zip(headers, mapping, strict=True)}
    existing = (
        await ImportTemplate.select(ImportTemplate.id)
        .where(ImportTemplate.owner == user.account_id, ImportTemplate.name == name)
        .first()
    )
    if existing:
        await ImportTemplate.update({ImportTemplate.mapping: by_header}).where(ImportTemplate.id == existing["id"])
    else:
        await ImportTemplate.insert(ImportTemplate(name=name, owner=user.account_id, mapping=by_header))


async def delete_template(user: CurrentUser, template_id: int) -> None:
    """The template's author or a supervisor removes it; anyone else gets NotVisible."""
    async with transaction():
        row = await ImportTemplate.select(ImportTemplate.owner).where(ImportTemplate.id == template_id).first()
        if row is None or not (user.is_supervisor or row["owner"] == user.account_id):
            raise NotVisible(template_id)
        await ImportTemplate.delete().where(ImportTemplate.id == template_id)


# ---------------------------------------------------------------------------------------------------------
# Checking rows


@dataclass
class Row:
    """A valid row: its number in the spreadsheet, the values to store and the keys it is matched by."""

    number: int
    values: dict[str, Any]
    keys: list[tuple[str, str]] = field(default_factory=list)
    # The 联系人 columns: {"name": …, "title": …}, empty when the row names nobody.
    contact: dict[str, str] = field(default_factory=dict)
    # Where the customer is (finder.place_of): a name alone does not match a customer of another place.
    place: Place = ("", "")


@dataclass
class Issue:
    number: int
    column: str
    value: str
    reason: str


async def _option_lookup() -> dict[str, dict[str, int]]:
    """Per option list, its active entries by label (Chinese or English, any case)."""
    lookup: dict[str, dict[str, int]] = {kind.value: {} for kind in OptionKind}
    for row in await OptionItem.select().where(OptionItem.active.eq(True)):
        for text in (row["label"], row["label_en"]):
            if text:
                lookup[row["kind"]].setdefault(normalize.clean_text(text).lower(), row["id"])
    return lookup


_MOBILE_SEPARATORS = re.compile(r"[ \-().]")


def _mainland_mobile(text: str, memo: dict[Any, Any]) -> str | None:
    """The stored form of a plain mainland mobile number ('138-1234-5678', '+86 13812345678'), or None to leave
    it to clean_field. Whether phonenumbers takes an 11-digit number as a mobile depends on its first five
    digits only (tests/test_imports.py holds the installed metadata to that), and asking it costs 50 µs: the
    answer for the first number with the same five digits is the answer for all of them."""
    if len(text) > 30:
        return None
    digits = _MOBILE_SEPARATORS.sub("", text)
    digits = digits.removeprefix("+86") if digits.startswith("+86") else digits.removeprefix("0086")
    if len(digits) != 11 or not digits.isascii() or not digits.isdigit() or digits[0] != "1":
        return None
    prefix = ("mobile", digits[:5])
    if prefix not in memo:
        memo[prefix] = normalize.mobile_or_none(digits) == digits
    return digits if memo[prefix] else None


def _is_landline(raw: str) -> bool:
    return 7 <= len(normalize.phone_digits(raw)) <= 20


async def check_row(
    number: int,
    cells: list[str],
    headers: list[str],
    mapping: list[str],
    options: dict[str, dict[str, int]],
    memo: dict[Any, Any],
) -> tuple[Row | None, list[Issue]]:
    """One row through the new-customer form's rules (app.customers.service.clean_field)."""
    raw: dict[str, tuple[str, str]] = {}
    for index, name in enumerate(mapping):
        if name:
            raw[name] = (headers[index], cells[index] if index < len(cells) else "")
    values: dict[str, Any] = {}
    issues: list[Issue] = []
    for name in IMPORTABLE:
        if name not in raw:
            continue
        header, text = raw[name]
        if not text or text.isspace():
            # An empty cell leaves the field at its default; the name's own rule reports a missing name below.
            continue
        if text.startswith("="):
            issues.append(_formula(number, header, text))
            continue
        spec = FIELDS[name]
        if spec.option_kind is not None:
            key = normalize.clean_text(text).lower()
            if not key:
                continue
            option_id = options[spec.option_kind.value].get(key)
            if option_id is None:
                issues.append(
                    Issue(
                        number, header, text, _("Not an entry of the list; an admin can add it under Administration.")
                    )
                )
            else:
                values[name] = option_id
            continue
        if name == "mobile" and (mobile := _mainland_mobile(text, memo)):
            values[name] = mobile
            continue
        remembered = (name, text, values.get("province", ""))
        if remembered in memo:
            values[name] = memo[remembered]
            continue
        try:
            value = await clean_field(name, text, province=values.get("province", ""))
            if name in ("province", "city"):
                # A list holds a few dozen places thousands of times over: each is worked out once.
                memo[remembered] = value
        except ValueError as error:
            # A landline in the mobile column (联系电话 holds either) goes to the landline field.
            if name == "mobile" and not raw.get("phone", ("", ""))[1] and _is_landline(text):
                values["phone"] = normalize.clean_text(text)
                continue
            issues.append(Issue(number, header, text, str(error)))
            continue
        if value not in ("", None) or name not in values:
            values[name] = value
    contact = _contact(number, raw, issues)
    if "title" in contact and "name" not in contact:
        # A title with nobody to hold it is the customer's own (a person on a list of organisations).
        values.setdefault("title", contact.pop("title"))
    if "name" not in values and not any(issue.column == raw["name"][0] for issue in issues):
        issues.append(Issue(number, raw["name"][0], "", _("This field is required.")))
    if issues:
        return None, issues
    values["name_key"] = normalize.name_key(values["name"])
    place = place_of(values.get("name", ""), values.get("province", ""), values.get("city", ""))
    return Row(number, values, _keys(values), contact, place), []


def _formula(number: int, header: str, text: str) -> Issue:
    return Issue(number, header, text, _("A formula, not a value: in Excel, copy the column and paste it as values."))


def _contact(number: int, raw: dict[str, tuple[str, str]], issues: list[Issue]) -> dict[str, str]:
    """The row's 联系人 columns as a contact's name and title; mistakes go to `issues`."""
    contact: dict[str, str] = {}
    for name in CONTACT_FIELDS:
        header, text = raw.get(name, ("", ""))
        value = normalize.clean_text(text)
        if not value:
            continue
        if value.startswith("="):
            issues.append(_formula(number, header, text))
        elif len(value) > CONTACT_TEXT_MAX:
            issues.append(Issue(number, header, text, _("At most %(n)s characters.", n=CONTACT_TEXT_MAX)))
        else:
            contact[name.removeprefix("contact_")] = value
    return contact


def _keys(values: dict[str, Any]) -> list[tuple[str, str]]:
    """What a row is matched by, as the duplicate warning matches: mobile, email, WeChat, name without legal
    form and place."""
    keys = []
    for name in ("mobile", "email", "wechat"):
        if values.get(name):
            keys.append((name, values[name]))
    if len(values.get("name_key", "")) >= 2:
        keys.append(("name_key", values["name_key"]))
    return keys


_KEY_REASONS: dict[str, Callable[[], str]] = {
    "mobile": lambda: _("same mobile"),
    "contact_mobile": lambda: _("same mobile as a contact"),
    "email": lambda: _("same email"),
    "wechat": lambda: _("same WeChat"),
    "name_key": lambda: _("similar name"),
}


@dataclass
class Checked:
    total: int
    rows: list[Row]
    issues: list[Issue]
    repeated: int  # rows left out for repeating an earlier row of the file
    invalid: int  # rows refused (a row may have several issues)


async def check_sheet(sheet: reader.Reading, mapping: list[str], policy: str) -> Checked:
    """Every row checked, and rows repeating an earlier row of the file (same keys) left out unless the policy
    is to create anyway. The same file always gives the same result, which is what resuming relies on."""
    options = await _option_lookup()
    memo: dict[Any, Any] = {}
    rows: list[Row] = []
    issues: list[Issue] = []
    # For each key, the earlier rows bearing it that tell each other apart (a name in several places, or with
    # several mobiles), at most SEEN_PER_KEY: (row number, mobile, place).
    first_seen: dict[tuple[str, str], list[tuple[int, str, Place]]] = {}
    total = repeated = invalid = 0
    async for part in sheet.parts:
        for number, cells in part:
            total += 1
            if total % 1000 == 0:
                # Checking 100,000 rows takes seconds: let the worker's other jobs (the search outbox) run meanwhile.
                await asyncio.sleep(0)
            row, problems = await check_row(number, cells, sheet.headers, mapping, options, memo)
            if row is None:
                issues.extend(problems)
                invalid += 1
                continue
            mobile = row.values.get("mobile", "")
            earlier = next(
                (
                    seen[0]
                    for key in row.keys
                    for seen in first_seen.get(key, ())
                    if not _told_apart(key[0], mobile, row.place, seen[1], seen[2])
                ),
                None,
            )
            if earlier is not None and policy != Policy.create:
                repeated += 1
                issues.append(Issue(number, "", "", _("Same customer as row %(n)s of the file.", n=earlier)))
                continue
            for key in row.keys:
                seen = first_seen.setdefault(key, [])
                if len(seen) < SEEN_PER_KEY:
                    seen.append((number, mobile, row.place))
            rows.append(row)
    return Checked(total, rows, issues, repeated, invalid)


# ---------------------------------------------------------------------------------------------------------
# Running a batch


Progress = Callable[[int, int], None]


class Interrupted(Exception):
    """Raised by a test's `stop_after_chunks`: the worker stops between two chunks as if it had been killed."""


async def _claim() -> tuple[int, Status] | None:
    """The oldest batch waiting for a worker — to import or to undo — or one whose worker went silent; marked as
    ours with a heartbeat. Its id and what to do: Status.running (import) or Status.undoing."""
    now = datetime.now(UTC)
    stale = ImportBatch.heartbeat_at < now - STALE_AFTER
    row = (
        await ImportBatch.select(ImportBatch.id, ImportBatch.status, ImportBatch.heartbeat_at)
        .where(
            (ImportBatch.status == Status.queued)
            | ((ImportBatch.status == Status.running) & stale)
            | ((ImportBatch.status == Status.undoing) & (ImportBatch.heartbeat_at.is_null() | stale))
        )
        .order_by(ImportBatch.id)
        .first()
    )
    if row is None:
        return None
    # Taken only if nobody took it meanwhile (another worker on PostgreSQL): the row must be as it was read.
    same_heartbeat = (
        ImportBatch.heartbeat_at.is_null()
        if row["heartbeat_at"] is None
        else ImportBatch.heartbeat_at == row["heartbeat_at"]
    )
    work = Status.undoing if row["status"] == Status.undoing else Status.running
    async with transaction():
        taken = (
            await ImportBatch.update({ImportBatch.status: work, ImportBatch.heartbeat_at: now})
            .where(ImportBatch.id == row["id"], ImportBatch.status == row["status"], same_heartbeat)
            .returning(ImportBatch.id)
        )
    return (row["id"], work) if taken else None


async def _beat(batch_id: int) -> None:
    """Heartbeats while the file is read and checked; once writing, every chunk beats with its progress (a beat
    of its own would then wait for the chunks' write lock, and on SQLite could wait in vain)."""
    while True:
        await asyncio.sleep(HEARTBEAT)
        try:
            await ImportBatch.update({ImportBatch.heartbeat_at: datetime.now(UTC)}).where(
                ImportBatch.id == batch_id, ImportBatch.status == Status.running
            )
        except Exception:
            log.exception("import %s: heartbeat not written", batch_id)


async def run_pending(*, progress: Progress | None = None, stop_after_chunks: int | None = None) -> int | None:
    """Run one batch that waits for a worker to import or undo it (or resume one whose worker died); its id, or
    None if none waits."""
    claimed = await _claim()
    if claimed is None:
        return None
    batch_id, work = claimed
    if work == Status.undoing:
        await run_undo(batch_id, stop_after_chunks=stop_after_chunks)
    else:
        await run_batch(batch_id, progress=progress, stop_after_chunks=stop_after_chunks)
    return batch_id


async def run_worker(*, stop: asyncio.Event | None = None) -> None:
    """The worker's import job: look for batches to import or undo every two seconds, until stopped."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            while not stop.is_set() and await run_pending() is not None:
                pass
        except Exception:
            log.exception("import failed; looking again later")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=POLL_SECONDS)


async def _fail(batch_id: int, message: str) -> None:
    async with transaction():
        await ImportBatch.update(
            {
                ImportBatch.status: Status.failed,
                ImportBatch.message: message,
                ImportBatch.finished_at: datetime.now(UTC),
            }
        ).where(ImportBatch.id == batch_id)
        await ImportFile.delete().where(ImportFile.batch == batch_id)


async def run_batch(batch_id: int, *, progress: Progress | None = None, stop_after_chunks: int | None = None) -> None:
    """Read, check and write a running batch, from where it stopped if it ran before. A file that turns out
    unreadable fails the batch before anything is written; an error while writing fails it with what was
    written so far recorded, so it can be undone."""
    beat = asyncio.create_task(_beat(batch_id))
    try:
        await _run(batch_id, progress, stop_after_chunks, beat)
    except reader.FileRejected as error:
        await _fail(batch_id, str(error))
    except Interrupted:
        raise
    except Exception:
        log.exception("import %s failed", batch_id)
        await _fail(batch_id, _("Something went wrong while importing; what was imported can be undone."))
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat


async def _run(
    batch_id: int, progress: Progress | None, stop_after_chunks: int | None, beat: asyncio.Task[None]
) -> None:
    batch = await ImportBatch.select().where(ImportBatch.id == batch_id).output(load_json=True).first()
    stored = await ImportFile.select(ImportFile.content).where(ImportFile.batch == batch_id).first()
    if batch is None or stored is None:
        return
    async with reader.reading(bytes(stored["content"])) as sheet:
        checked = await check_sheet(sheet, batch["mapping"], batch["policy"])
    if not batch["total_rows"]:
        # The first run writes the rows found invalid or repeated, together with the counts; a resumed run
        # finds them written and the same rows to go on with.
        async with transaction():
            await ImportIssue.delete().where(ImportIssue.batch == batch_id)
            await insert_rows(ImportIssue, [_issue_row(batch_id, issue) for issue in checked.issues])
            await ImportBatch.update(
                {
                    ImportBatch.total_rows: checked.total,
                    ImportBatch.valid_rows: len(checked.rows),
                    ImportBatch.invalid_count: checked.invalid,
                    ImportBatch.skipped_count: checked.repeated,
                    ImportBatch.started_at: datetime.now(UTC),
                }
            ).where(ImportBatch.id == batch_id)
        batch = await ImportBatch.select().where(ImportBatch.id == batch_id).output(load_json=True).first()
        assert batch is not None
    beat.cancel()
    writer = _Writer(batch)
    for chunks, start in enumerate(range(batch["rows_done"], len(checked.rows), CHUNK)):
        if stop_after_chunks is not None and chunks >= stop_after_chunks:
            raise Interrupted(batch_id)
        await writer.write(checked.rows[start : start + CHUNK], start + CHUNK)
        if is_sqlite():
            # SQLite has one writer at a time, and one asking again and again gets the lock before those waiting
            # in their busy timeout: a pause between chunks lets the users' own saves in.
            await asyncio.sleep(WRITER_PAUSE)
        if progress:
            progress(min(start + CHUNK, len(checked.rows)), len(checked.rows))
    async with transaction():
        await ImportBatch.update({ImportBatch.status: Status.done, ImportBatch.finished_at: datetime.now(UTC)}).where(
            ImportBatch.id == batch_id, ImportBatch.status == Status.running
        )
        # The file was kept for a worker to resume from; a finished batch needs only its records (for undo).
        await ImportFile.delete().where(ImportFile.batch == batch_id)


def _issue_row(batch_id: int, issue: Issue) -> dict[str, Any]:
    return {
        "batch": batch_id,
        "row_number": issue.number,
        "column": issue.column[:200],
        "value": issue.value[:500],
        "reason": issue.reason,
    }


def _record_row(
    batch_id: int, number: int, customer_id: int, action: str, before: Any = None, after: Any = None
) -> dict[str, Any]:
    return {
        "batch": batch_id,
        "row_number": number,
        "customer_id": customer_id,
        "action": action,
        "before": core.to_json(before) if before else "{}",
        "after": core.to_json(after) if after else "{}",
    }


_UPDATABLE = [*IMPORTABLE, "name_key"]


async def _as_bulk_writer() -> None:
    """On SQLite, the page cache and checkpoint size of a connection that writes chunk after chunk (see
    WRITER_CACHE_KIB and WRITER_CHECKPOINT_PAGES)."""
    if is_sqlite():
        await Customer.raw(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
        await Customer.raw(f"PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}")


class _Writer:
    """Writes a batch's rows chunk by chunk, each chunk in one transaction with the batch's progress."""

    def __init__(self, batch: dict[str, Any]) -> None:
        self.batch = batch
        self.actor = batch["created_by"]
        self.counts = {
            "created_count": batch["created_count"],
            "updated_count": batch["updated_count"],
            "skipped_count": batch["skipped_count"],
        }
        self.supervisor = False
        self._scope_known = False
        # PostgreSQL: customers this writer created when it last refreshed the planner's statistics, and how many
        # the table then held (None: not yet).
        self._analyzed: tuple[int, float] | None = None

    async def _may_update(self, owner: int | None) -> bool:
        """Staff update only customers in their own scope (their own and the pool's), as on the customer page."""
        if not self._scope_known:
            account = await Account.select(Account.role).where(Account.id == self.actor).first()
            self.supervisor = account is not None and account["role"] in ("supervisor", "admin")
            self._scope_known = True
        return self.supervisor or owner is None or owner == self.actor

    async def _refresh_statistics(self) -> None:
        """PostgreSQL plans the duplicate check from the statistics of the customer and contact tables, which
        autovacuum refreshes only now and then: planned for the empty table of a fresh database, each chunk's
        lookups read every live customer, and checking 20,000 rows against 20,000 customers took 12 s (1 s with
        fresh statistics). They are refreshed when the import starts writing and whenever the table may have
        doubled since; each refresh samples the two tables in under a second."""
        created = self.counts["created_count"]
        if self._analyzed is not None and created - self._analyzed[0] < max(self._analyzed[1], ANALYZE_AFTER):
            return
        await Customer.raw("ANALYZE customer, contact")
        rows = await Customer.raw("SELECT reltuples FROM pg_class WHERE relname = 'customer'")
        self._analyzed = (created, float(rows[0]["reltuples"]) if rows else 0.0)

    async def write(self, rows: list[Row], done: int) -> None:
        batch_id = self.batch["id"]
        policy = self.batch["policy"]
        now = datetime.now(UTC)
        if not is_sqlite() and policy != Policy.create:
            await self._refresh_statistics()
        async with transaction():
            await _as_bulk_writer()
            existing = await _existing(rows) if policy != Policy.create else {}
            to_create: list[Row] = []
            issues: list[Issue] = []
            records: list[dict[str, Any]] = []
            updates: list[tuple[int, dict[str, Any]]] = []
            current: dict[int, dict[str, Any]] = {}
            known = await _contact_names(existing, rows) if policy == Policy.update else {}
            # The search jobs of this chunk: a customer created or updated with a contact person is one document.
            queued: set[tuple[str, int]] = set()
            # (row, customer id) of the people to add as contacts of customers already in Kehu.
            new_contacts: list[tuple[Row, int]] = []
            for row in rows:
                mobile = row.values.get("mobile", "")
                match = next(
                    (
                        (customer, key[0])
                        for key in _row_keys(row)
                        for customer in existing.get(key, ())
                        if not _told_apart(key[0], mobile, row.place, customer["mobile"], place_of_record(customer))
                    ),
                    None,
                )
                if match is None:
                    to_create.append(row)
                    continue
                customer, key_name = match
                reason = _KEY_REASONS[key_name]()
                if policy == Policy.skip or not await self._may_update(customer["owner"]):
                    self.counts["skipped_count"] += 1
                    text = (
                        _("Already in Kehu (%(reason)s): %(name)s.", reason=reason, name=customer["name"])
                        if policy == Policy.skip
                        else _("Already in Kehu as a colleague's customer (%(reason)s); left as it is.", reason=reason)
                    )
                    issues.append(Issue(row.number, "", "", text))
                    continue
                before = current.setdefault(customer["id"], customer)
                after = {name: value for name, value in row.values.items() if value not in ("", None)}
                changes = core.diff({name: before.get(name) for name in after}, after)
                names = known.setdefault(customer["id"], set())
                new_contact = bool(row.contact) and row.contact["name"] not in names
                if not changes and not new_contact:
                    self.counts["skipped_count"] += 1
                    issues.append(Issue(row.number, "", "", _("Already in Kehu with these details.")))
                    continue
                self.counts["updated_count"] += 1
                if new_contact:
                    names.add(row.contact["name"])
                    new_contacts.append((row, customer["id"]))
                if not changes:
                    continue
                changed = {name: after[name] for name in changes}
                await Customer.update({**changed, "updated_at": now}).where(Customer.id == customer["id"])
                records.append(
                    _record_row(
                        batch_id,
                        row.number,
                        customer["id"],
                        "updated",
                        before={name: before.get(name) for name in changed},
                        after=changed,
                    )
                )
                current[customer["id"]] = {**before, **changed}
                updates.append((customer["id"], {k: v for k, v in changes.items() if k != "name_key"}))
            created = await self._create(to_create, now) if to_create else []
            for row, customer_id in zip(to_create, created, strict=True):
                records.append(_record_row(batch_id, row.number, customer_id, "created"))
            self.counts["created_count"] += len(created)
            people = [(row, customer_id) for row, customer_id in zip(to_create, created, strict=True) if row.contact]
            contact_ids = await self._add_contacts([*people, *new_contacts], now, queued)
            for (row, customer_id), contact_id in zip(new_contacts, contact_ids[len(people) :], strict=True):
                # Undone on its own: the customer it joined stays.
                records.append(
                    _record_row(batch_id, row.number, customer_id, "contact", after={"contact_id": contact_id})
                )
            await core.record_many(
                actor_id=self.actor,
                entity="customer",
                action="create",
                changes=[
                    (
                        customer_id,
                        core.diff({}, {k: v for k, v in row.values.items() if v not in ("", None) and k != "name_key"}),
                    )
                    for row, customer_id in zip(to_create, created, strict=True)
                ],
                queued=queued,
            )
            await core.record_many(
                actor_id=self.actor, entity="customer", action="update", changes=updates, queued=queued
            )
            await insert_rows(ImportRecord, records)
            await insert_rows(ImportIssue, [_issue_row(batch_id, issue) for issue in issues])
            await ImportBatch.update(
                {
                    ImportBatch.rows_done: min(done, self.batch["valid_rows"]),
                    ImportBatch.heartbeat_at: now,
                    **{getattr(ImportBatch, name): value for name, value in self.counts.items()},
                }
            ).where(ImportBatch.id == batch_id)

    async def _add_contacts(
        self, people: list[tuple[Row, int]], now: datetime, queued: set[tuple[str, int]]
    ) -> list[int]:
        """The rows' 联系人 as contacts of the given customers, audited; their ids in order."""
        if not people:
            return []
        ids = await insert_rows(
            Contact,
            [
                {
                    **_CONTACT_DEFAULTS,
                    "customer": customer_id,
                    "name": row.contact["name"],
                    "title": row.contact.get("title", ""),
                    "created_at": now,
                }
                for row, customer_id in people
            ],
            returning_id=True,
        )
        await core.record_many(
            actor_id=self.actor,
            entity="contact",
            action="create",
            changes=[
                (contact_id, core.diff({}, row.contact))
                for (row, _customer_id), contact_id in zip(people, ids, strict=True)
            ],
            customer_ids=[customer_id for _row, customer_id in people],
            queued=queued,
        )
        return ids

    async def _create(self, rows: list[Row], now: datetime) -> list[int]:
        batch = self.batch
        shared = {
            **_CUSTOMER_DEFAULTS,
            "kind": Kind.prospect.value,
            "origin": batch["origin"],
            "owner": batch["owner"],
            "created_by": self.actor,
            "created_at": now,
            "updated_at": now,
        }
        return await insert_rows(
            Customer,
            [
                {**shared, **row.values, "source_channel": row.values.get("source_channel") or batch["source_channel"]}
                for row in rows
            ],
            returning_id=True,
        )


# Every column of a new customer or contact, as Piccolo would fill it: a bulk insert names them all.
_CUSTOMER_DEFAULTS: dict[str, Any] = {
    column._meta.db_column_name: column.get_default_value()
    for column in Customer._meta.non_default_columns
    if column._meta.name not in ("created_at", "updated_at")
}
_CONTACT_DEFAULTS: dict[str, Any] = {
    column._meta.db_column_name: column.get_default_value()
    for column in Contact._meta.non_default_columns
    if column._meta.name != "created_at"
}


async def _contact_names(existing: dict[tuple[str, str], list[dict[str, Any]]], rows: list[Row]) -> dict[int, set[str]]:
    """The names of the live contacts of the matched customers, when any row names a contact."""
    if not any(row.contact for row in rows):
        return {}
    ids = sorted({customer["id"] for candidates in existing.values() for customer in candidates})
    names: dict[int, set[str]] = {}
    for contact in await select_in(Contact, ["customer", "name"], "customer", ids):
        names.setdefault(contact["customer"], set()).add(contact["name"])
    return names


def _told_apart(key: str, mobile: str, place: Place, other_mobile: str, other_place: Place) -> bool:
    """A name alone does not make two customers one when each has a mobile and they differ, or when they are in
    two different cities or provinces: the water bureaus of two cities share the name 水务局 once the city is
    dropped, and 北海天泽置业 is not 昆明天泽置业."""
    if key != "name_key":
        return False
    return bool(mobile and other_mobile and mobile != other_mobile) or elsewhere(place, other_place)


def _row_keys(row: Row) -> list[tuple[str, str]]:
    """The row's keys in the order a match is reported: mobile (the customer's, then a contact's), email, WeChat,
    name."""
    keys = []
    for name, value in row.keys:
        keys.append((name, value))
        if name == "mobile":
            keys.append(("contact_mobile", value))
    return keys


async def _existing(rows: list[Row]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Live customers matching any key of these rows, by key: for a mobile, email or WeChat the oldest customer
    bearing it; for a name, the oldest in each place the rows are in (and the oldest without a city), or the
    oldest of all for a row whose place is unknown."""
    wanted: dict[str, set[str]] = {"mobile": set(), "email": set(), "wechat": set(), "name_key": set()}
    # (name key, city as a customer's city field may spell it), "" for no city.
    placed: set[tuple[str, str]] = set()
    for row in rows:
        for name, value in row.keys:
            if name == "name_key" and row.place[1]:
                placed.update((value, city) for city in (*city_spellings(row.place[1]), ""))
            else:
                wanted[name].add(value)
    columns = ["id", "name", "owner", *(name for name in _UPDATABLE if name != "name")]
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for name, values in wanted.items():
        if values:
            # Only the oldest customer of a key counts: a name such as 公路局 is shared by dozens of customers, and
            # reading them all for every row that bears it made a large import's check grow with its square.
            for customer in await select_in(Customer, columns, name, sorted(values), oldest=True):
                found.setdefault((name, customer[name]), [customer])
    if placed:
        for customer in await select_in(Customer, columns, ("name_key", "city"), sorted(placed), oldest=True):
            candidates = found.setdefault(("name_key", customer["name_key"]), [])
            if all(known["id"] != customer["id"] for known in candidates):
                candidates.append(customer)
        for candidates in found.values():
            candidates.sort(key=lambda customer: customer["id"])
    if wanted["mobile"]:
        contacts = await select_in(Contact, ["customer", "mobile"], "mobile", sorted(wanted["mobile"]), given=True)
        ids = sorted({contact["customer"] for contact in contacts})
        customers = {customer["id"]: customer for customer in await select_in(Customer, columns, "id", ids)}
        for contact in sorted(contacts, key=lambda item: item["customer"]):
            if contact["customer"] in customers:
                found.setdefault(("contact_mobile", contact["mobile"]), [customers[contact["customer"]]])
    return found


# ---------------------------------------------------------------------------------------------------------
# Undo


def may_undo(user: CurrentUser, batch: dict[str, Any]) -> bool:
    """A finished batch that wrote something, by the person who imported it or a supervisor."""
    return (
        batch["status"] in (Status.done, Status.failed)
        and batch["created_count"] + batch["updated_count"] > 0
        and (user.is_supervisor or batch["created_by"] == user.account_id)
    )


async def undo(user: CurrentUser, batch_id: int) -> None:
    """Ask for the batch to be undone: the worker then soft-deletes what it created and restores what it
    updated (`run_undo`), while the batch's page shows how far it got. Raises NotVisible or FormErrors."""
    batch = await get_batch(user, batch_id)
    if not may_undo(user, batch):
        raise FormErrors({"undo": _("Only a finished import can be undone, once.")})
    total = await ImportRecord.count().where(ImportRecord.batch == batch_id)
    async with transaction():
        taken = (
            await ImportBatch.update(
                {
                    ImportBatch.status: Status.undoing,
                    ImportBatch.undone_by: user.account_id,
                    ImportBatch.undo_below: None,
                    ImportBatch.undo_done: 0,
                    ImportBatch.undo_total: total,
                    ImportBatch.heartbeat_at: None,
                }
            )
            .where(ImportBatch.id == batch_id, ImportBatch.status.is_in([Status.done, Status.failed]))
            .returning(ImportBatch.id)
        )
        if not taken:
            raise FormErrors({"undo": _("Only a finished import can be undone, once.")})
        await core.record(
            actor_id=user.account_id,
            entity="import_batch",
            entity_id=batch_id,
            action="undo",
            changes={"status": [batch["status"], Status.undoing.value]},
        )


async def run_undo(batch_id: int, *, stop_after_chunks: int | None = None) -> None:
    """Take back what an undoing batch wrote, newest record first, UNDO_CHUNK records per transaction with
    the batch's progress — a worker that dies resumes from there — then mark the batch undone. On SQLite each
    chunk is followed by a pause, as an import's, so that the users' saves are not kept waiting."""
    chunks = 0
    while True:
        batch = (
            await ImportBatch.select(ImportBatch.status, ImportBatch.undone_by, ImportBatch.undo_below)
            .where(ImportBatch.id == batch_id)
            .first()
        )
        if batch is None or batch["status"] != Status.undoing:
            return
        if stop_after_chunks is not None and chunks >= stop_after_chunks:
            raise Interrupted(batch_id)
        if not await _undo_chunk(batch_id, batch["undone_by"], batch["undo_below"]):
            return
        chunks += 1
        if is_sqlite():
            await asyncio.sleep(WRITER_PAUSE)


async def _undo_chunk(batch_id: int, actor: int, below: int | None) -> bool:
    """Take back the next UNDO_CHUNK records of the batch, audited as the person who asked; False when none were left
    and the batch is now undone. A field someone changed since the import keeps their change."""
    now = datetime.now(UTC)
    async with transaction():
        await _as_bulk_writer()
        query = ImportRecord.select(
            ImportRecord.id, ImportRecord.customer_id, ImportRecord.action, ImportRecord.before, ImportRecord.after
        ).where(ImportRecord.batch == batch_id)
        if below is not None:
            query = query.where(ImportRecord.id < below)
        records = await query.order_by(ImportRecord.id, ascending=False).limit(UNDO_CHUNK).output(load_json=True)
        if not records:
            await ImportBatch.update(
                {ImportBatch.status: Status.undone, ImportBatch.undone_at: now, ImportBatch.heartbeat_at: now}
            ).where(ImportBatch.id == batch_id, ImportBatch.status == Status.undoing)
            await core.record(
                actor_id=actor,
                entity="import_batch",
                entity_id=batch_id,
                action="undo",
                changes={"status": [Status.undoing.value, Status.undone.value]},
            )
            return False
        created = [record["customer_id"] for record in records if record["action"] == "created"]
        if created:
            deleted = (
                await Customer.update({Customer.deleted_at: now})
                .where(Customer.id.is_in(created), Customer.deleted_at.is_null())
                .returning(Customer.id)
            )
            await core.record_many(
                actor_id=actor,
                entity="customer",
                action="delete",
                changes=[(row["id"], {"deleted_at": [None, now.isoformat()]}) for row in deleted],
            )
        restored: list[tuple[int, dict[str, list[Any]]]] = []
        for record in records:
            if record["action"] == "updated":
                changes = await _restore(record, now)
                if changes:
                    restored.append((record["customer_id"], changes))
        await core.record_many(actor_id=actor, entity="customer", action="update", changes=restored)
        added = [record["after"]["contact_id"] for record in records if record["action"] == "contact"]
        if added:
            removed = (
                await Contact.update({Contact.deleted_at: now})
                .where(Contact.id.is_in(added), Contact.deleted_at.is_null())
                .returning(Contact.id, Contact.customer)
            )
            await core.record_many(
                actor_id=actor,
                entity="contact",
                action="delete",
                changes=[(row["id"], {"deleted_at": [None, now.isoformat()]}) for row in removed],
                customer_ids=[row["customer"] for row in removed],
            )
        await ImportBatch.update(
            {
                ImportBatch.undo_below: records[-1]["id"],
                ImportBatch.undo_done: ImportBatch.undo_done + len(records),
                ImportBatch.heartbeat_at: now,
            }
        ).where(ImportBatch.id == batch_id)
    return True


async def _restore(record: dict[str, Any], now: datetime) -> dict[str, list[Any]]:
    """Put back the fields an import changed on a customer, those nobody changed since; the changes made."""
    names = list(record["after"])
    now_row = (
        await Customer.select(*(getattr(Customer, name) for name in names))
        .where(Customer.id == record["customer_id"])
        .first()
    )
    if now_row is None:
        return {}
    back = {
        name: record["before"].get(name)
        for name in names
        if core.diff({name: now_row[name]}, {name: record["after"][name]}) == {}
    }
    if not back:
        return {}
    await Customer.update({**back, "updated_at": now}).where(Customer.id == record["customer_id"])
    changes = core.diff(now_row, back)
    changes.pop("name_key", None)
    return changes
