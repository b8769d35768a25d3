from enum import StrEnum

from piccolo.columns import BigInt, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Account
from app.customers.tables import Customer


class FeedbackStatus(StrEnum):
    new = "new"
    handled = "handled"


class Feedback(Table):
    """Feedback from a customer or a website visitor (反馈), handled by staff."""

    customer = ForeignKey(Customer, null=True, index=True)
    # For a visitor who is not (yet) a customer, and as the signature the customer gave.
    visitor_name = Varchar(length=100, default="")
    visitor_contact = Varchar(length=200, default="")
    conversation_id = BigInt(null=True, default=None)
    rating = Integer(null=True, default=None)
    content = Text()
    status = Varchar(length=10, choices=FeedbackStatus, default=FeedbackStatus.new, index=True)
    handled_by = ForeignKey(Account, null=True)
    handled_at = Timestamptz(null=True, default=None)
    reply = Text(default="")
    created_by = ForeignKey(Account, null=True)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    deleted_at = Timestamptz(null=True, default=None)
