from piccolo.columns import JSON, BigInt, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Account


class AuditLog(Table):
    """Who changed what and when, field by field: {"field": [old, new]}."""

    actor = ForeignKey(Account, null=True)
    entity = Varchar(length=30)
    entity_id = BigInt(index=True)
    # The customer a change belongs to, so a customer's history includes its contacts, projects and follow-ups.
    customer_id = BigInt(null=True, default=None, index=True)
    action = Varchar(length=20)
    diff = JSON(default={})
    at = Timestamptz(default=TimestamptzNow())


class SearchOutbox(Table):
    """A change waiting to reach the search index; written in the same transaction as the change itself."""

    entity = Varchar(length=30)
    entity_id = BigInt()
    created_at = Timestamptz(default=TimestamptzNow())
    attempts = Integer(default=0)
    last_error = Text(default="")
