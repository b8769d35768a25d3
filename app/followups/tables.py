from piccolo.columns import BigInt, ForeignKey, Text, Timestamptz
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Account
from app.customers.tables import Contact, Customer
from app.options.tables import OptionItem


class FollowUp(Table):
    """One contact with a customer (跟进记录): who, how, what came of it, when to follow up next."""

    customer = ForeignKey(Customer, null=False, index=True)
    author = ForeignKey(Account, null=True)
    contact = ForeignKey(Contact, null=True)
    happened_at = Timestamptz(default=TimestamptzNow(), index=True)
    method = ForeignKey(OptionItem, null=True)
    content = Text()
    outcome = Text(default="")
    next_follow_up_at = Timestamptz(null=True, default=None)
    # Set when the follow-up records a closed website chat.
    conversation_id = BigInt(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    deleted_at = Timestamptz(null=True, default=None)
