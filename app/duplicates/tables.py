from enum import StrEnum

from piccolo.columns import JSON, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Account
from app.customers.tables import Customer


class PairStatus(StrEnum):
    open = "open"
    dismissed = "dismissed"
    merged = "merged"


class DuplicatePair(Table):
    """Two live customers the finder thinks are one (customer_a has the smaller id), with why and how sure.

    A rescan replaces the open pairs; dismissed ones stay, so "not a duplicate" is said once."""

    customer_a = ForeignKey(Customer, null=False, index=True)
    customer_b = ForeignKey(Customer, null=False, index=True)
    # 1–100: same mobile and same name is 100; a name alone is well under it.
    score = Integer(index=True)
    # Reason codes, strongest first: mobile, email, wechat, contact, name, pinyin, company, city.
    reasons = JSON(default=[])
    status = Varchar(length=10, choices=PairStatus, default=PairStatus.open, index=True)
    found_at = Timestamptz(default=TimestamptzNow())
    decided_by = ForeignKey(Account, null=True)
    decided_at = Timestamptz(null=True, default=None)


class DuplicateScan(Table):
    """The state of the duplicate scan (one row, id 1): when it last ran, what it found, and a pending request."""

    requested_at = Timestamptz(null=True, default=None)
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
    customers = Integer(default=0)
    pairs = Integer(default=0)
    milliseconds = Integer(default=0)
    # Values shared by too many customers to point at duplicates (a switchboard number, a group's e-mail):
    # [{"reason": "mobile", "value": "…", "customers": 523}, …], the largest first.
    common = JSON(default=[])


class CustomerMerge(Table):
    """One merge: `merged` was folded into `survivor`. It keeps what the survivor's fields were and which records
    moved, so the merge can be undone exactly."""

    survivor = ForeignKey(Customer, null=False, index=True)
    merged = ForeignKey(Customer, null=False, index=True)
    pair = ForeignKey(DuplicatePair, null=True)
    actor = ForeignKey(Account, null=True)
    merged_at = Timestamptz(default=TimestamptzNow())
    # {"field": value before the merge} for each survivor field the merge changed.
    survivor_before = JSON(default={})
    # {"contact": [ids], "project": [...], "follow_up": [...], "feedback": [...], "conversation": [...],
    #  "chat_visitor": [...]}: the merged customer's records that moved to the survivor.
    moved = JSON(default={})
    undone_at = Timestamptz(null=True, default=None)
    undone_by = ForeignKey(Account, null=True)
