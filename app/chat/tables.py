from enum import StrEnum

from piccolo.columns import BigInt, Boolean, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Account
from app.customers.tables import Customer


class Status(StrEnum):
    open = "open"
    closed = "closed"


class Author(StrEnum):
    visitor = "visitor"
    staff = "staff"
    system = "system"


class ChatVisitor(Table):
    """A browser that opened the website chat. It proves who it is with a random token it keeps; only the
    token's SHA-256 is stored, so the table cannot be used to read anyone's conversation."""

    token_hash = Varchar(length=64, unique=True)
    name = Varchar(length=100, default="")
    mobile = Varchar(length=20, default="")
    email = Varchar(length=200, default="")
    wechat = Varchar(length=100, default="")
    customer = ForeignKey(Customer, null=True, index=True)
    # The visitor's latest conversation: the poll reads its cursor through this row in one indexed lookup.
    conversation_id = BigInt(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class Conversation(Table):
    """One website chat (or a message left while nobody was online), with what brought the visitor."""

    visitor = ForeignKey(ChatVisitor, null=False, index=True)
    customer = ForeignKey(Customer, null=True, index=True)
    status = Varchar(length=10, choices=Status, default=Status.open, index=True)
    assignee = ForeignKey(Account, null=True, index=True)
    # Left as a message outside business hours or with nobody online: closed from the start.
    left_message = Boolean(default=False)
    site = Varchar(length=50, default="")
    page_url = Varchar(length=1000, default="")
    page_title = Varchar(length=300, default="")
    referrer = Varchar(length=1000, default="")
    utm_source = Varchar(length=200, default="")
    utm_medium = Varchar(length=200, default="")
    utm_campaign = Varchar(length=200, default="")
    language = Varchar(length=35, default="")
    user_agent = Varchar(length=500, default="")
    ip = Varchar(length=45, default="", index=True)
    # The id of the newest message: "anything after N?" is answered from this row alone.
    last_message_id = BigInt(default=0)
    last_message_at = Timestamptz(default=TimestamptzNow())
    # Visitor messages since staff last looked, and when the oldest of them arrived (the waiting time).
    unread = Integer(default=0)
    waiting_since = Timestamptz(null=True, default=None)
    first_response_at = Timestamptz(null=True, default=None)
    started_at = Timestamptz(default=TimestamptzNow(), index=True)
    closed_at = Timestamptz(null=True, default=None)
    closed_by = Varchar(length=10, default="")
    rating = Integer(null=True, default=None)
    feedback_id = BigInt(null=True, default=None)
    followup_id = BigInt(null=True, default=None)


class ChatMessage(Table):
    conversation = ForeignKey(Conversation, null=False, index=True)
    author = Varchar(length=10, choices=Author)
    staff = ForeignKey(Account, null=True)
    body = Text()
    created_at = Timestamptz(default=TimestamptzNow())


class CannedReply(Table):
    """A ready answer staff insert with one click (常用回复), kept by an admin."""

    title = Varchar(length=60)
    body = Text()
    position = Integer(default=0)
    active = Boolean(default=True)


class ChatHours(Table):
    """When the chat is staffed (one row). Outside these hours visitors are offered to leave a message."""

    limited = Boolean(default=False)
    # ISO weekdays the chat is open, e.g. "12345" for Monday to Friday.
    days = Varchar(length=7, default="12345")
    opens = Varchar(length=5, default="09:00")
    closes = Varchar(length=5, default="18:00")
