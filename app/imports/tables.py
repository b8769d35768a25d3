from enum import StrEnum

from piccolo.columns import JSON, BigInt, Bytea, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Account
from app.customers.tables import Origin
from app.options.tables import OptionItem


class Policy(StrEnum):
    """What a row that matches an existing customer does."""

    skip = "skip"
    update = "update"
    create = "create"


class Status(StrEnum):
    draft = "draft"  # uploaded, the columns not yet confirmed
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"
    undoing = "undoing"  # asked to be undone; the worker takes it back chunk by chunk
    undone = "undone"


class ImportBatch(Table):
    """One spreadsheet brought in: who, when, which file, with what settings, and how far it got."""

    created_by = ForeignKey(Account, null=True)
    created_at = Timestamptz(default=TimestamptzNow())
    file_name = Varchar(length=200)
    file_type = Varchar(length=10)  # csv | xlsx
    # The columns as the header row named them, and for each its customer field ("" for not imported).
    headers = JSON(default=[])
    mapping = JSON(default=[])
    # The first rows of the file, shown beside the mapping.
    preview = JSON(default=[])
    origin = Varchar(length=10, choices=Origin, default=Origin.external)
    source_channel = ForeignKey(OptionItem, null=True)
    # None: the public pool.
    owner = ForeignKey(Account, null=True)
    policy = Varchar(length=10, choices=Policy, default=Policy.skip)
    status = Varchar(length=10, choices=Status, default=Status.draft, index=True)
    message = Text(default="")
    # Data rows in the file, and those valid and not repeating an earlier row: what the worker writes.
    total_rows = Integer(default=0)
    valid_rows = Integer(default=0)
    # Valid rows the worker has written (or skipped as duplicates), in file order: a restarted worker goes on from here.
    rows_done = Integer(default=0)
    created_count = Integer(default=0)
    updated_count = Integer(default=0)
    skipped_count = Integer(default=0)
    invalid_count = Integer(default=0)
    # A running batch whose heartbeat is older than a minute lost its worker: another one takes it over.
    heartbeat_at = Timestamptz(null=True, default=None)
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
    undone_at = Timestamptz(null=True, default=None)
    # Who asked for the undo; while it runs, the records it has taken back (newest first: every record below
    # `undo_below` in id is still to do, None before the first chunk) out of `undo_total`.
    undone_by = ForeignKey(Account, null=True)
    undo_below = BigInt(null=True, default=None)
    undo_done = Integer(default=0)
    undo_total = Integer(default=0)


class ImportFile(Table):
    """The uploaded file itself, kept in the database so any worker on any machine can read it."""

    batch = ForeignKey(ImportBatch, null=False, unique=True)
    content = Bytea()


class ImportRecord(Table):
    """A customer the batch created or updated, or a contact it added; for an update, the fields as they were
    before, for undo."""

    batch = ForeignKey(ImportBatch, null=False, index=True)
    row_number = Integer()
    customer_id = BigInt(index=True)
    action = Varchar(length=10)  # created | updated | contact (a contact added to a customer already in Kehu)
    before = JSON(default={})
    after = JSON(default={})


class ImportIssue(Table):
    """A row that was not imported, or a duplicate that was skipped: row number, column and reason."""

    batch = ForeignKey(ImportBatch, null=False, index=True)
    row_number = Integer()
    column = Varchar(length=200, default="")
    value = Text(default="")
    reason = Text()


class ImportTemplate(Table):
    """A saved column mapping, by header name, to reuse for files of the same layout."""

    name = Varchar(length=60)
    owner = ForeignKey(Account, null=False, index=True)
    # {"客户名称": "name", "手机号": "mobile", ...}
    mapping = JSON(default={})
    created_at = Timestamptz(default=TimestamptzNow())
